"""The Ray Data actors of `vidtt run --ray`: sampling (CPU, the processor alone) and generation
(one model an actor). Ray pickles them by module path, so they live here, where every worker
can import them; a request that fails in either becomes its error record."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from typing import Any

from vidtt.config import PipelineConfig
from vidtt.jobs.records import answer_record, error_text, record_line
from vidtt.pipeline.request import Request
from vidtt.plugins.choose import parse_backend_name


class SampleActor:
    """A CPU actor: the config's pipeline around the processor alone (no weights), sampling
    each request's media with the frame cache; rows out carry the pickled `Prepared`. `rule`
    is the frame rule the driver chose (`FrameRule` fields), taken as it is."""

    def __init__(
        self, settings: dict[str, Any], timestamps: bool, rule: dict[str, Any] | None = None
    ) -> None:
        from types import SimpleNamespace

        from vidtt.budget.explain import model_config_of
        from vidtt.engine.core import Engine
        from vidtt.engine.loading import load_processor
        from vidtt.media.frame_cache import FrameCache
        from vidtt.pipeline.core import Pipeline
        from vidtt.settings.frame_rule import FrameRule
        from vidtt.settings.resolve import resolve

        resolved = resolve(settings)
        if rule is not None:
            resolved = replace(resolved, frame_rule=FrameRule(**rule))
        config = resolved.config
        processor, model_config = load_processor(config), model_config_of(config)
        stub = SimpleNamespace(config=model_config, device="cpu")
        engine = Engine(stub, processor, name=config.model, backend="cpu")
        self.pipe = Pipeline(resolved, engine=engine, cache=FrameCache())
        self.timestamps = timestamps

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        keys, ids, prepared, errors = [], [], [], []
        for row in batch.to_pylist():
            keys.append(row["key"])
            ids.append(row["id"])
            try:
                request = Request.model_validate_json(row["request"])
                done = self.pipe.prepare(request, self.timestamps)
                prepared.append(pickle.dumps(done, protocol=pickle.HIGHEST_PROTOCOL))
                errors.append("")
            except Exception as exc:
                prepared.append(b"")
                errors.append(error_text(exc))
        return pa.table(
            {
                "key": pa.array(keys, pa.int64()),
                "id": pa.array(ids, pa.string()),
                "prepared": pa.array(prepared, pa.large_binary()),
                "error": pa.array(errors, pa.string()),
            }
        )


class GenerateActor:
    """An actor holding one Pipeline (one model); answers batches of sampled requests."""

    def __init__(self, settings: dict[str, Any], gpu: bool) -> None:
        from vidtt.pipeline.core import Pipeline

        config = PipelineConfig.model_validate(settings)
        family, index = parse_backend_name(config.backend)
        if gpu and family == "cuda" and index is not None:  # Ray shows each actor its GPU as 0
            config = config.model_copy(update={"backend": "cuda"})
        self.pipe = Pipeline(config)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        out: list[tuple[dict[str, Any], int]] = []
        ready: list[tuple[dict[str, Any], Any]] = []
        for row in batch.to_pylist():
            rid = json.loads(row["id"])
            if row["error"]:
                out.append(({"id": rid, "error": row["error"]}, row["key"]))
                continue
            try:
                ready.append((row, pickle.loads(row["prepared"])))
            except Exception as exc:
                out.append(({"id": rid, "error": error_text(exc)}, row["key"]))
        ready.sort(key=lambda item: (item[1].batch_key(), item[1].size()))
        answers = self.answer([p for _, p in ready])
        for (row, _), answer in zip(ready, answers):
            out.append((answer_record(json.loads(row["id"]), answer), row["key"]))
        return pa.table(
            {
                "key": pa.array([key for _, key in out], pa.int64()),
                "record": pa.array([record_line(r) for r, _ in out], pa.large_string()),
                "failed": pa.array(["error" in r for r, _ in out], pa.bool_()),
            }
        )

    def answer(self, prepared: list[Any]) -> list[Any]:
        """`answer_each`; an unexpected failure of a batch is retried one request at a time,
        and a request that still fails gets its error."""
        if not prepared:
            return []
        try:
            return self.pipe.answer_each(prepared)
        except Exception as exc:
            if len(prepared) == 1:
                return [exc]
            return [item for p in prepared for item in self.answer([p])]
