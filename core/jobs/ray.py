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

Here: the options and the runner (`run`, `plan`, `execute`). The cluster connection is in
`jobs.ray_cluster`, the actors in `jobs.ray_actors`, the dataset in `jobs.ray_dataset`, folders
of shards in `jobs.shards` and the records shared with the local run in `jobs.records`. Ray is
imported only inside functions, so `import vidtt` stays light without it.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

from vidtt.config import PipelineConfig, load_config
from vidtt.errors import OptionsError
from vidtt.jobs.local import JobPlan, Summary, check_job_files, plan_job
from vidtt.jobs.ray_actors import PrefixTally, SampleActor
from vidtt.jobs.ray_cluster import cluster, ray_connected
from vidtt.jobs.ray_dataset import build_dataset, gather, request_rows, worker_config, write_folder
from vidtt.jobs.records import append, compact, end_line
from vidtt.jobs.shards import (
    SHARD_SUFFIX,
    ShardStamp,
    check_folder,
    compact_folder,
    is_folder,
    read_shards,
    write_shard,
)

__all__ = ["Actors", "execute", "parse_actors", "plan", "pool_size", "run"]

Actors = int | tuple[int, int]


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


def check_options(
    actors: Actors, batch_size: int, num_cpus: int | None, gpus_per_actor: float | None
) -> tuple[int, int]:
    """Refuse bad values from Python callers before anything starts; the (min, max) pool."""
    if batch_size < 1:
        raise OptionsError("batch_size must be at least 1")
    pool = pool_size(actors)
    if num_cpus is not None and num_cpus < 1:
        raise OptionsError("num_cpus must be at least 1")
    if gpus_per_actor is not None and gpus_per_actor < 0:
        raise OptionsError("gpus_per_actor cannot be negative")
    return pool


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


def plan(input: str | Path, output: str | Path, retry_failed: bool = True) -> JobPlan:
    """`jobs.plan_job` for a file or a folder of shards (no Ray, no model)."""
    input_path = Path(input)
    if not is_folder(output):
        check_job_files(input_path, Path(output))
        return plan_job(input_path, Path(output), retry_failed)
    folder = check_folder(output)
    return plan_job(input_path, folder, retry_failed, earlier=read_shards(folder))


def execute(
    config: PipelineConfig,
    job: JobPlan,
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
    pool = check_options(actors, batch_size, num_cpus, gpus_per_actor)
    config.check()
    folder = job.output_path.is_dir()
    rows = request_rows(job)
    started = ShardStamp.now()
    settings = worker_config(config)
    rule = driver_rule(settings, timestamps) if rows and address == "local" else None
    connection = cluster(address, num_cpus, progress) if rows else nullcontext(None)
    with connection as ray:  # connected (or refused) before anything is written
        try:
            write_invalid(job, folder, started)
            if rows:
                dataset = build_dataset(
                    ray, rows, settings, pool, batch_size, timestamps, gpus_per_actor, rule
                )
                write_records(dataset, job, folder, started)
        finally:
            if folder:
                compact_folder(job.output_path)
            else:
                compact(job.output_path, [rid for rid, _ in job.requests])
    if folder and rows:
        count_kept(job, rows)
    return job.summary


def driver_rule(settings: dict[str, Any], timestamps: bool) -> dict[str, Any] | None:
    """On this machine (a local cluster): a sampling actor built here first, so that what
    would stop every worker is said here in one line; its frame rule, resolved once, then
    travels to the workers. (A remote cluster's workers read the model's processor there, as
    this machine may not have the model; they resolve the same rule from the same config.)"""
    if ray_connected():
        return None
    rule = SampleActor(settings, timestamps).pipe.settings.frame_rule
    return asdict(rule) if rule is not None else None


def write_invalid(job: JobPlan, folder: bool, started: str) -> None:
    """The error records of the lines that cannot be answered, written before the others."""
    invalid = [{"id": rid, "error": req} for rid, req in job.todo if isinstance(req, str)]
    if folder:
        write_shard(job.output_path / f"{started}-invalid{SHARD_SUFFIX}", invalid)
    else:
        end_line(job.output_path)
        append(job.output_path, invalid)
    job.summary.failed += len(invalid)


def write_records(dataset: Any, job: JobPlan, folder: bool, started: str) -> None:
    """The dataset's records: as shards into the folder, or appended to the file (counted,
    the generation actors' prefix caches summed into the summary)."""
    if folder:
        write_folder(dataset, job.output_path, started)
    else:
        tally = PrefixTally()
        answered, failed = gather(dataset, job.output_path, tally.note)
        job.summary.answered += answered
        job.summary.failed += failed
        job.summary.prefix = tally.line()


def count_kept(job: JobPlan, rows: list[tuple[Any, Any]]) -> None:
    """Count the rows' records the folder kept (the workers wrote them, the driver saw none),
    and the answers that continued from a kept prompt start (the actors' own prefix counts
    stay with them)."""
    kept = read_shards(job.output_path)
    reused = tokens = 0
    for rid, _ in rows:
        record = kept.get(str(rid), {"error": "lost"})
        job.summary.failed += "error" in record
        job.summary.answered += "error" not in record
        cached = int((record.get("usage") or {}).get("cached_tokens", 0))
        reused, tokens = reused + bool(cached), tokens + cached
    job.summary.prefix = (
        f"prefix cache: {reused} answers continued from a kept start ({tokens} prompt tokens); "
        "a folder output does not gather the actors' counts"
    )
