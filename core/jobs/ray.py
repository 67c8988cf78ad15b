"""`vidtt run --ray`: the same job as `vidtt run`, on a Ray cluster with Ray Data.

    vidtt run pipe.yaml --input requests.jsonl --output answers.jsonl --ray          # local
    vidtt run pipe.yaml --input requests.jsonl --output answers/ --ray auto --actors 2-8

The driver reads and checks every request line as the local run does (`jobs.plan_job`): invalid
lines and duplicate ids become error records at once, without Ray, and ids answered in an
earlier run are skipped (failed ones retried). The rest flow through Ray Data:

1. rows `{key, id, request}` (the `Request` as JSON, its paths made absolute against the JSONL
   file's folder), sorted by their first video so that questions about one video meet in one
   sampling actor and its frame cache decodes the video once;
2. sampling, in an autoscaling pool of CPU actors that each hold the model's processor and
   config but no weights (`Pipeline.prepare`): the sampled request travels to the next stage
   pickled, its Clips as uint8 numpy arrays with their indices and timestamps;
3. generation, in a pool of actors that each load the model once (`Pipeline.answer_each`,
   `--actors N` or `MIN-MAX`, one GPU an actor when the config's backend is cuda, or auto on
   a cluster with GPUs);
4. output: `--output FILE.jsonl` gathers the records on the driver, appending each as it comes,
   and rewrites the file with one record per id at the end, exactly as the local run does;
   `--output DIR/` has the workers write JSONL shards into the folder, and a rerun reads every
   shard of the folder to resume, then drops the records that newer ones replaced.

Every worker builds its `PipelineConfig` from the driver's (command-line overrides included), so
the config's `plugins` / `disable_plugins` lists, sampler, formatter and limits apply inside the
workers; the driver's `VIDTT_*` plugin, limit and backend variables travel with the job. A
request that fails to sample or generate becomes its error record; it never fails the job.

Ray is imported only inside the functions here, so `import vidtt` stays light without it.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtt.config import PipelineConfig, load_config
from vidtt.errors import ConfigError, OptionsError, VidttError
from vidtt.jobs.local import (
    Job,
    Summary,
    check_job_files,
    compact,
    end_line,
    output_records,
    plan_job,
    replaces,
)
from vidtt.pipeline.request import Request

Actors = int | tuple[int, int]

SHARD_SUFFIX = ".jsonl"
MAX_BLOCKS = 20_000  # input blocks of the request dataset, at most
FORWARDED_ENV = (
    "VIDTT_PLUGINS",
    "VIDTT_DISABLE_PLUGINS",
    "VIDTT_STRICT_PLUGINS",
    "VIDTT_PLUGIN_TIMEOUT",
    "VIDTT_BACKEND",
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "TRANSFORMERS_VERBOSITY",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS",
)
FORWARDED_PREFIXES = ("VIDTT_LIMIT_",)
NO_RAY = "--ray needs Ray, which is not installed here: pip install 'vidtt[ray]'"


# -- options ---------------------------------------------------------------------------------
def parse_actors(text: str) -> Actors:
    """`N` (a fixed pool) or `MIN-MAX` (a pool that grows with the work), N, MIN >= 1."""
    low, dash, high = str(text).strip().partition("-")
    try:
        numbers = (int(low), int(high)) if dash else (int(low), int(low))
    except ValueError:
        raise OptionsError(
            f"--actors: expected a count (4) or a range MIN-MAX (2-8), got {text!r}"
        ) from None
    if numbers[0] < 1 or numbers[1] < numbers[0]:
        raise OptionsError(f"--actors {text}: counts must be at least 1 and MIN no larger than MAX")
    return numbers if dash else numbers[0]


def pool_size(actors: Actors) -> tuple[int, int]:
    """(min, max) actors of a pool; checks Python callers' values as the CLI does its own."""
    if isinstance(actors, bool) or not isinstance(actors, (int, tuple, list)):
        raise OptionsError(f"actors must be a count or a (min, max) pair, not {actors!r}")
    low, high = (actors, actors) if isinstance(actors, int) else tuple(actors)
    if not (isinstance(low, int) and isinstance(high, int)) or low < 1 or high < low:
        raise OptionsError(f"actors must be at least 1, with min <= max; got {actors!r}")
    return low, high


def is_folder(output: str | Path) -> bool:
    """Whether `output` names a folder of shards: an existing folder, or a name ending in /."""
    text = str(output)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


# -- the job ---------------------------------------------------------------------------------
def run(
    config: PipelineConfig | dict[str, Any] | str | Path,
    input: str | Path,
    output: str | Path,
    *,
    address: str = "local",
    actors: Actors = 1,
    batch_size: int = 8,
    retry_failed: bool = True,
    timestamps: bool = False,
    num_cpus: int | None = None,
    gpus_per_actor: float | None = None,
    progress: bool = True,
) -> Summary:
    """Answer the JSONL file `input` on a Ray cluster, as `vidtt run` does on one machine.

    `output` is a JSONL file, or a folder of JSONL shards (an existing folder or a name
    ending in "/"). `address`: "local" starts a private cluster for this run (`num_cpus`
    CPUs, default all), "auto" joins the cluster `ray start` made on this machine, anything
    else is a cluster address (`HOST:6379` or `ray://HOST:10001`); when this process is already
    connected (`ray.init` was called) that connection is used and kept. `actors`: generation
    actors, a count or a (min, max) pair; each loads the model once and takes
    `gpus_per_actor` GPUs (default: 1 when the backend is cuda, or auto on a cluster with GPUs;
    else 0). Returns the counts of answered, failed and skipped requests."""
    config = load_config(config)
    job = plan(input, output, retry_failed)
    return execute(
        config,
        job,
        address=address,
        actors=actors,
        batch_size=batch_size,
        timestamps=timestamps,
        num_cpus=num_cpus,
        gpus_per_actor=gpus_per_actor,
        progress=progress,
    )


def plan(input: str | Path, output: str | Path, retry_failed: bool = True) -> Job:
    """`jobs.plan_job` for a file or a folder of shards (no Ray, no model)."""
    input_path = Path(input)
    if not is_folder(output):
        check_job_files(input_path, Path(output))
        return plan_job(input_path, Path(output), retry_failed)
    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {output} is a file, not a folder of shards")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write into {folder}: {exc.strerror or exc}") from None
    return plan_job(input_path, folder, retry_failed, earlier=read_shards(folder))


def execute(
    config: PipelineConfig,
    job: Job,
    *,
    address: str = "local",
    actors: Actors = 1,
    batch_size: int = 8,
    timestamps: bool = False,
    num_cpus: int | None = None,
    gpus_per_actor: float | None = None,
    progress: bool = True,
) -> Summary:
    """Answer what `job` has left on Ray; records for invalid lines are written first."""
    if batch_size < 1:
        raise OptionsError("batch_size must be at least 1")
    pool = pool_size(actors)
    if num_cpus is not None and num_cpus < 1:
        raise OptionsError("num_cpus must be at least 1")
    if gpus_per_actor is not None and gpus_per_actor < 0:
        raise OptionsError("gpus_per_actor cannot be negative")
    config.check()
    folder = job.output_path.is_dir()
    invalid = [{"id": rid, "error": req} for rid, req in job.todo if isinstance(req, str)]
    rows = request_rows(job)
    started = ShardStamp.now()
    summary = job.summary
    settings = worker_config(config)
    if rows and address == "local" and not ray_connected():
        SampleActor(settings, timestamps)  # what would stop every worker, said here in one line
    connection = cluster(address, num_cpus, progress) if rows else nullcontext(None)
    with connection as ray:  # connected (or refused) before anything is written
        try:
            if folder:
                write_shard(job.output_path / f"{started}-invalid{SHARD_SUFFIX}", invalid)
            else:
                end_line(job.output_path)
                append(job.output_path, invalid)
            summary.failed += len(invalid)
            if rows:
                dataset = build_dataset(
                    ray, rows, settings, pool, batch_size, timestamps, gpus_per_actor
                )
                if folder:
                    write_folder(dataset, job.output_path, started)
                else:
                    answered, failed = gather(dataset, job.output_path)
                    summary.answered += answered
                    summary.failed += failed
        finally:
            if folder:
                compact_folder(job.output_path)
            else:
                compact(job.output_path, [rid for rid, _ in job.requests])
    if folder and rows:
        kept = read_shards(job.output_path)
        for rid, _ in rows:
            record = kept.get(str(rid), {"error": "lost"})
            summary.failed += "error" in record
            summary.answered += "error" not in record
    return summary


def request_rows(job: Job) -> list[tuple[Any, Request]]:
    """The valid requests left, those about the same video next to each other."""
    valid = [(rid, req) for rid, req in job.todo if isinstance(req, Request)]
    return sorted(valid, key=lambda item: first_video(item[1]))


def first_video(request: Request) -> str:
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
    in force here when the config sets none."""
    from vidtt import limits

    updates: dict[str, Any] = {}
    model = Path(config.model).expanduser()
    if model.exists() and not model.is_absolute():
        updates["model"] = str(model.resolve())
    if config.limits is None:
        updates["limits"] = limits.process_default()
    copied = config.model_copy(update=updates)
    settings: dict[str, Any] = copied.model_dump(mode="json", exclude_unset=True)
    settings.update({k: json.loads(json.dumps(v, default=_plain)) for k, v in updates.items()})
    return settings


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if dump is None:
        raise TypeError(f"cannot send {type(value).__name__} to the workers")
    return dump(mode="json")


def forwarded_env() -> dict[str, str]:
    """The driver's variables that change what the workers do (never credentials)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name in FORWARDED_ENV or name.startswith(FORWARDED_PREFIXES)
    }


# -- the cluster -----------------------------------------------------------------------------
def import_ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(NO_RAY) from None
    return ray


def ray_connected() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


@contextmanager
def cluster(address: str, num_cpus: int | None, progress: bool = True) -> Iterator[Any]:
    """Ray, connected: a private local cluster ("local"), the one on this machine ("auto"), the
    one at `address`, or the connection this process already has."""
    ray = import_ray()
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    if not progress:  # nor Ray Data's log lines about its progress
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        yield ray
        return
    common: dict[str, Any] = {
        "logging_level": "WARNING",
        "runtime_env": {"env_vars": forwarded_env()},
    }
    if address == "local":
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
    else:
        if num_cpus is not None:
            raise OptionsError("num_cpus applies only to a local cluster (address='local')")
        check_reachable(address)
        try:
            ray.init(address=address, **common)
        except Exception as exc:
            ray.shutdown()
            raise ConfigError(connect_error(address, exc)) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address where nothing listens (Ray itself waits minutes)."""
    import socket
    import urllib.parse

    if address == "auto":
        return
    parts = urllib.parse.urlsplit(address if "://" in address else f"ray-gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise ConfigError(
            f"--ray {address}: expected local, auto, HOST:PORT (the head's GCS, port 6379 by "
            "default) or ray://HOST:PORT"
        )
    port = port or (10001 if parts.scheme == "ray" else 6379)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--ray {address}: cannot connect to a Ray cluster at {host}:{port}: "
            f"{exc.strerror or exc or 'timed out'}"
        ) from None


def connect_error(address: str, exc: Exception) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if address == "auto":
        return (
            "--ray auto: no running Ray cluster found on this machine (start one with "
            f"`ray start --head`, or use --ray local): {first}"
        )
    return f"--ray {address}: cannot connect to the Ray cluster there: {first}"


def build_dataset(
    ray: Any,
    rows: list[tuple[Any, Request]],
    settings: dict[str, Any],
    pool: tuple[int, int],
    batch_size: int,
    timestamps: bool,
    gpus_per_actor: float | None,
) -> Any:
    """requests -> sampling actors (CPU) -> generation actors (GPU or CPU) -> records."""
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
        fn_constructor_args=(settings, timestamps),
        batch_format="pyarrow",
        batch_size=None,
        compute=ActorPoolStrategy(min_size=1, max_size=samplers),
        num_cpus=1,
    )
    return dataset.map_batches(
        GenerateActor,
        fn_constructor_args=(settings, bool(gpus)),
        batch_format="pyarrow",
        batch_size=batch_size,
        compute=ActorPoolStrategy(min_size=pool[0], max_size=pool[1]),
        num_cpus=generate_cpus,
        num_gpus=gpus,
    )


def default_gpus(ray: Any, settings: dict[str, Any]) -> int:
    """One GPU an actor for a cuda backend, or for auto on a cluster that has GPUs."""
    family = str(settings.get("backend", "auto")).partition(":")[0]
    if family == "cuda":
        return 1
    if family == "auto" and ray.cluster_resources().get("GPU", 0) > 0:
        return 1
    return 0


def from_items(ray: Any, items: list[dict[str, Any]], blocks: int) -> Any:
    import inspect

    if "override_num_blocks" in inspect.signature(ray.data.from_items).parameters:
        return ray.data.from_items(items, override_num_blocks=blocks)
    return ray.data.from_items(items, parallelism=blocks)  # Ray before 2.10


def run_ray(action: Any) -> Any:
    """Run `action`; a failure inside Ray that comes from vidtt is raised as that error, in one
    line (a model that cannot load on a worker, say)."""
    try:
        return action()
    except VidttError as exc:  # Ray's wrappers subclass the original error
        raise ConfigError(f"on a Ray worker: {root_message(exc)}") from None
    except Exception as exc:
        cause = vidtt_cause(exc)
        if cause is not None:
            raise ConfigError(f"on a Ray worker: {root_message(cause)}") from None
        found = vidtt_message(exc)
        if found is None:
            raise
        raise ConfigError(f"on a Ray worker: {found}") from None


def vidtt_message(exc: BaseException) -> str | None:
    """The last `vidtt.errors.SomeError: message` line in the text of an error and its causes
    (Ray keeps only the text of an error raised while an actor starts)."""
    import re

    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for match in re.finditer(r"vidtt\.errors\.\w+: (.+)", str(current)):
            found = match.group(1).strip()
        current = current.__cause__ or current.__context__
    return found


def vidtt_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, VidttError):
            return current
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return None


def root_message(exc: BaseException) -> str:
    """The vidtt message of an error, without the traceback Ray adds to it."""
    inner = getattr(exc, "cause", None)
    if isinstance(inner, VidttError):
        exc = inner
    args = getattr(exc, "args", ())
    text = str(args[0]) if args and isinstance(args[0], str) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


# -- output ----------------------------------------------------------------------------------
def gather(dataset: Any, path: Path) -> tuple[int, int]:
    """Append each record to `path` as it arrives; (answered, failed)."""
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

        run_ray(consume)
    return answered, failed


def write_folder(dataset: Any, folder: Path, stamp: str) -> None:
    """The workers write their records as JSONL shards into `folder`."""
    sink = shard_sink(str(folder.resolve()), stamp)
    run_ray(lambda: dataset.write_datasink(sink))


def shard_sink(folder: str, stamp: str) -> Any:
    from ray.data import Datasink

    class JsonlShards(Datasink):  # type: ignore[misc]
        """Each write task writes one `STAMP-TASK-RANDOM.jsonl` (via a temporary file)."""

        def write(self, blocks: Any, ctx: Any) -> int:
            import pyarrow as pa

            lines: list[str] = []
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
                lines += table.column("record").to_pylist()
            if lines:
                name = f"{stamp}-{getattr(ctx, 'task_idx', 0):05d}-{uuid.uuid4().hex[:8]}"
                write_lines(Path(folder) / f"{name}{SHARD_SUFFIX}", lines)
            return len(lines)

        def get_name(self) -> str:
            return "WriteJSONLShards"

    return JsonlShards()


def append(path: Path, records: list[dict[str, Any]]) -> None:
    if records:
        with path.open("a", encoding="utf-8") as out:
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_shard(path: Path, records: list[dict[str, Any]]) -> None:
    if records:
        write_lines(path, [json.dumps(r, ensure_ascii=False) for r in records])


def write_lines(path: Path, lines: list[str]) -> None:
    """Write a whole file through a temporary one and a rename: never half a shard."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ShardStamp:
    @staticmethod
    def now() -> str:
        """A name prefix that sorts in time order: shards of later runs sort later."""
        return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f"-{uuid.uuid4().hex[:6]}"


def shards(folder: Path) -> list[Path]:
    """The JSONL shards of a folder, oldest run first (hidden temporary files aside)."""
    return sorted(
        p for p in folder.glob(f"*{SHARD_SUFFIX}") if p.is_file() and not p.name.startswith(".")
    )


@dataclass
class Kept:
    shard: Path
    line: int
    record: dict[str, Any]


def winners(folder: Path) -> dict[str, Kept]:
    """Per id, the record a reader keeps: the last answer, else the last error (as
    `jobs.read_output` decides for one file, over the shards in order)."""
    kept: dict[str, Kept] = {}
    for shard in shards(folder):
        with shard.open(encoding="utf-8", errors="replace") as lines:
            for number, record in output_records(lines):
                key = str(record["id"])
                before = kept.get(key)
                if replaces(record, before.record if before else None):
                    kept[key] = Kept(shard, number, record)
    return kept


def read_shards(folder: Path) -> dict[str, dict[str, Any]]:
    """`jobs.read_output` for a folder of shards."""
    return {key: kept.record for key, kept in winners(folder).items()}


def compact_folder(folder: Path) -> None:
    """Leave one record per id in the folder: shards holding records that newer ones replaced
    (or lines a crash cut short) are rewritten without them; emptied shards are removed."""
    keep: dict[Path, set[int]] = {}
    for kept in winners(folder).values():
        keep.setdefault(kept.shard, set()).add(kept.line)
    for shard in shards(folder):
        wanted = keep.get(shard, set())
        lines = shard.read_text(encoding="utf-8", errors="replace").splitlines()
        if len(wanted) == len(lines):
            continue
        if not wanted:
            shard.unlink()
        else:
            write_lines(shard, [line for n, line in enumerate(lines) if n in wanted])


# -- the workers -----------------------------------------------------------------------------
def error_text(exc: BaseException) -> str:
    """An error record's message, as the local run writes it."""
    if isinstance(exc, VidttError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


class SampleActor:
    """A CPU actor: the config's pipeline around the processor alone (no weights), sampling
    each request's media with the frame cache; rows out carry the pickled `Prepared`."""

    def __init__(self, settings: dict[str, Any], timestamps: bool) -> None:
        from types import SimpleNamespace

        from vidtt.budget.explain import model_config_of
        from vidtt.engine.core import Engine
        from vidtt.engine.loading import load_processor
        from vidtt.media.frame_cache import FrameCache
        from vidtt.pipeline.core import Pipeline

        config = PipelineConfig.model_validate(settings)
        processor, model_config = load_processor(config), model_config_of(config)
        stub = SimpleNamespace(config=model_config, device="cpu")
        engine = Engine(stub, processor, name=config.model, backend="cpu")
        self.pipe = Pipeline(config, engine=engine, cache=FrameCache())
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
        if gpu and config.backend.startswith("cuda:"):  # Ray shows each actor its GPU as cuda:0
            config = config.model_copy(update={"backend": "cuda"})
        self.pipe = Pipeline(config)

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        rows = batch.to_pylist()
        out: list[tuple[dict[str, Any], int]] = []
        ready: list[tuple[dict[str, Any], Any]] = []
        for row in rows:
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
            rid = json.loads(row["id"])
            if isinstance(answer, BaseException):
                record = {"id": rid, "error": error_text(answer)}
            else:
                record = {"id": rid, **answer.model_dump()}
            out.append((record, row["key"]))
        return pa.table(
            {
                "key": pa.array([key for _, key in out], pa.int64()),
                "record": pa.array(
                    [json.dumps(r, ensure_ascii=False) for r, _ in out], pa.large_string()
                ),
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
