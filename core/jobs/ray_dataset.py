"""The Ray Data flow of `vidtt run --ray`: the request rows (sorted by their first video), the
config as the workers rebuild it, the dataset through sampling and generation actors, and its
records gathered into one file or written as shards into a folder."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidtt.config import PipelineConfig
from vidtt.jobs.local import JobPlan
from vidtt.jobs.ray_actors import GenerateActor, SampleActor, store_env
from vidtt.jobs.ray_cluster import run_ray
from vidtt.jobs.shards import shard_sink
from vidtt.pipeline.request import Request
from vidtt.plugins.choose import parse_backend_name

MAX_BLOCKS = 20_000  # input blocks of the request dataset, at most


def request_rows(job: JobPlan) -> list[tuple[Any, Request]]:
    """The valid requests left, those about the same video next to each other."""
    valid = [(rid, req) for rid, req in job.todo if isinstance(req, Request)]
    return sorted(valid, key=lambda item: first_video(item[1]))


def first_video(request: Request) -> str:
    """The first video a request names ("" when none)."""
    from vidtt.types import VideoPart

    if request.videos:
        return str(request.videos[0])
    for message in request.messages or []:
        for part in message.content:
            if isinstance(part, VideoPart):
                return str(part.video)
    return ""


def worker_config(config: PipelineConfig) -> dict[str, Any]:
    """The config as the workers will rebuild it: the settings given (and only those, so
    defaults are applied there as here), a local model folder made absolute, and the limits
    in force here (the config's over the process's), whole: a worker may not have this
    process's `VIDTT_LIMIT_*` variables."""
    from vidtt import limits

    updates: dict[str, Any] = {}
    model = Path(config.model).expanduser()
    if model.exists() and not model.is_absolute():
        updates["model"] = str(model.resolve())
    updates["limits"] = limits.over(config.limits, limits.process_default())
    copied = config.model_copy(update=updates)
    settings: dict[str, Any] = copied.model_dump(mode="json", exclude_unset=True)
    settings.update({k: json.loads(json.dumps(v, default=_plain)) for k, v in updates.items()})
    return settings


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"cannot send {type(value).__name__} to the workers")
    return dump(mode="json")


def build_dataset(
    ray: Any,
    rows: list[tuple[Any, Request]],
    settings: dict[str, Any],
    pool: tuple[int, int],
    batch_size: int,
    timestamps: bool,
    gpus_per_actor: float | None,
    rule: dict[str, Any] | None = None,
) -> Any:
    """requests -> sampling actors (CPU) -> generation actors (GPU or CPU) -> records; `rule`:
    the frame rule the driver chose, for the sampling actors to take as it is."""
    from ray.data import ActorPoolStrategy

    cpus = int(ray.cluster_resources().get("CPU", 1))
    gpus = gpus_per_actor if gpus_per_actor is not None else default_gpus(ray, settings)
    # CPU generation gets a share of the cores (Ray gives torch that many threads)
    generate_cpus = 1 if gpus else max(1, cpus // (pool[1] + 1))
    samplers = max(1, cpus - pool[1] * generate_cpus)
    items = [
        {"key": n, "id": json.dumps(rid), "request": request.model_dump_json()}
        for n, (rid, request) in enumerate(rows)
    ]
    blocks = min(len(items), MAX_BLOCKS, max(1, math.ceil(len(items) / batch_size)))
    dataset = from_items(ray, items, blocks)
    dataset = dataset.map_batches(
        SampleActor,
        fn_constructor_args=(settings, timestamps, rule),
        batch_format="pyarrow",
        batch_size=None,
        compute=ActorPoolStrategy(min_size=1, max_size=samplers),
        num_cpus=1,
    )
    return dataset.map_batches(
        GenerateActor,
        fn_constructor_args=(settings, bool(gpus), store_env()),
        batch_format="pyarrow",
        batch_size=batch_size,
        compute=ActorPoolStrategy(min_size=pool[0], max_size=pool[1]),
        num_cpus=generate_cpus,
        num_gpus=gpus,
    )


def default_gpus(ray: Any, settings: dict[str, Any]) -> int:
    """One GPU an actor for a cuda backend, or for auto on a cluster that has GPUs."""
    family, _ = parse_backend_name(str(settings.get("backend", "auto")))
    if family == "cuda":
        return 1
    if family == "auto" and ray.cluster_resources().get("GPU", 0) > 0:
        return 1
    return 0


def from_items(ray: Any, items: list[dict[str, Any]], blocks: int) -> Any:
    """`ray.data.from_items` in `blocks` blocks, on Ray before and after 2.10."""
    import inspect

    if "override_num_blocks" in inspect.signature(ray.data.from_items).parameters:
        return ray.data.from_items(items, override_num_blocks=blocks)
    return ray.data.from_items(items, parallelism=blocks)  # Ray before 2.10


def gather(dataset: Any, path: Path, seen: Callable[[Any], None] | None = None) -> tuple[int, int]:
    """Append each record to `path` as it arrives (each batch shown to `seen` too);
    (answered, failed)."""
    answered = failed = 0
    with path.open("a", encoding="utf-8") as out:

        def consume() -> None:
            nonlocal answered, failed
            for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                for record, bad in zip(
                    batch.column("record").to_pylist(), batch.column("failed").to_pylist()
                ):
                    out.write(record + "\n")
                    failed += bool(bad)
                    answered += not bad
                out.flush()
                if seen is not None:
                    seen(batch)

        run_ray(consume)
    return answered, failed


def write_folder(dataset: Any, folder: Path, stamp: str) -> None:
    """The workers write their records as JSONL shards into `folder`."""
    sink = shard_sink(str(folder.resolve()), stamp)
    run_ray(lambda: dataset.write_datasink(sink))
