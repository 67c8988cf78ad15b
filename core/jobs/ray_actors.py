"""The Ray Data actors of `vidtt run --ray`: sampling (CPU, the processor alone) and generation
(one model an actor). Ray pickles them by module path, so they live here, where every worker
can import them; a request that fails in either becomes its error record.

A request of the `segments` strategy needs the model to describe its segments, so the sampling
actor only checks it (its options and its one video) and passes it on as a `Deferred`; the
generation actor that takes it makes (or finds) its notes in the on-disk store and answers it
with the others. Different videos' segment requests thus spread over the generation actors.

Each generation actor has its own engine and so its own prefix cache: every row it sends back
carries the actor's counts so far (`prefix_note`), and the driver sums the latest of each actor
(`PrefixTally`) into the run's summary line."""

from __future__ import annotations

import json
import os
import pickle
import uuid
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from vidtt import envs
from vidtt.config import PipelineConfig
from vidtt.jobs.records import answer_record, error_text, record_line
from vidtt.pipeline.request import Request
from vidtt.plugins.choose import parse_backend_name

STORE_ENV = ("VIDTT_CACHE_DIR", "VIDTT_CACHE_MAX_BYTES")  # where segment notes are kept


def store_env() -> dict[str, str]:
    """The driver's store settings, for generation actors that may not have started with them
    (a cluster this process was already connected to)."""
    given = {name: envs.raw(name) for name in STORE_ENV}
    return {name: value for name, value in given.items() if value is not None}


@dataclass
class Deferred:
    """A request the generation actor prepares itself (strategy segments: its notes need the
    model), with the run's timestamps setting."""

    request: str  # the Request as JSON
    timestamps: bool


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
                done = self.prepare(request, row["request"])
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

    def prepare(self, request: Request, text: str) -> Any:
        """The sampled request, or (strategy segments) the request checked and deferred."""
        resolved = self.pipe.resolve(request, self.timestamps)  # bad options fail here
        if resolved.strategy == "direct":
            return self.pipe.prepare(resolved)
        from vidtt.pipeline import cutting

        cutting.the_video(request)
        return Deferred(text, self.timestamps)


class GenerateActor:
    """An actor holding one Pipeline (one model); answers batches of sampled requests, and
    prepares the deferred ones (strategy segments) itself first. `env`: the driver's store
    settings (`store_env`), so that notes go where the driver keeps them."""

    def __init__(
        self, settings: dict[str, Any], gpu: bool, env: dict[str, str] | None = None
    ) -> None:
        from vidtt.pipeline.core import Pipeline

        os.environ.update(env or {})
        config = PipelineConfig.model_validate(settings)
        family, index = parse_backend_name(config.backend)
        if gpu and family == "cuda" and index is not None:  # Ray shows each actor its GPU as 0
            config = config.model_copy(update={"backend": "cuda"})
        self.pipe = Pipeline(config)
        self.ident = uuid.uuid4().hex[:12]  # tells this actor's prefix counts from others'

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
                ready.append((row, self.ready(pickle.loads(row["prepared"]))))
            except Exception as exc:
                out.append(({"id": rid, "error": error_text(exc)}, row["key"]))
        answers = self.answer([p for _, p in ready])  # grouped by `answer_each`
        for (row, _), answer in zip(ready, answers):
            out.append((answer_record(json.loads(row["id"]), answer), row["key"]))
        return pa.table(
            {
                "key": pa.array([key for _, key in out], pa.int64()),
                "record": pa.array([record_line(r) for r, _ in out], pa.large_string()),
                "failed": pa.array(["error" in r for r, _ in out], pa.bool_()),
                "prefix": pa.array(
                    [prefix_note(self.ident, self.pipe.engine)] * len(out), pa.string()
                ),
            }
        )

    def ready(self, prepared: Any) -> Any:
        """A sampled request as it came; a deferred one prepared here (its notes made with
        this actor's model, or found in the store)."""
        if isinstance(prepared, Deferred):
            request = Request.model_validate_json(prepared.request)
            return self.pipe.prepare(request, prepared.timestamps)
        return prepared

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


def prefix_note(actor: str, engine: Any) -> str:
    """What `actor`'s prefix cache did so far, as JSON: its `PrefixStats` fields, or `off`
    (why, or "" when it was turned off)."""
    stats = engine.prefix_stats()
    if stats is None:
        return json.dumps({"actor": actor, "off": engine.reuse_blocker or ""})
    return json.dumps({"actor": actor, **asdict(stats)})


@dataclass
class PrefixTally:
    """The driver's view of the generation actors' prefix caches: the latest note of each
    (counts only grow), summed into one summary line."""

    notes: dict[str, dict[str, Any]] = field(default_factory=dict)

    def note(self, batch: Any) -> None:
        """Take the `prefix` column of a batch of records (absent: nothing to take)."""
        if "prefix" not in batch.column_names:
            return
        for text in set(batch.column("prefix").to_pylist()):
            note = json.loads(text)
            actor = note.pop("actor")
            before = self.notes.get(actor)
            if before is None or done(note) >= done(before):
                self.notes[actor] = note

    def line(self) -> str | None:
        """`prefix cache: ...` summed over the actors (how many, when more than one), `off`
        (with why) when none has one, None when no actor sent a note."""
        from vidtt.engine.prefix import PrefixStats

        kept = [n for n in self.notes.values() if "off" not in n]
        if not kept:
            reasons = sorted({n["off"] for n in self.notes.values() if n["off"]})
            if not self.notes:
                return None
            return f"prefix cache: off ({'; '.join(reasons)})" if reasons else "prefix cache: off"
        total = PrefixStats(**{k: sum(n[k] for n in kept) for k in kept[0]})
        actors = f" over {len(kept)} actors" if len(kept) > 1 else ""
        return total.describe() + actors


def done(note: dict[str, Any]) -> int:
    """How far an actor's note is: the prompts its prefix cache counted."""
    return int(note.get("hits", 0)) + int(note.get("misses", 0))
