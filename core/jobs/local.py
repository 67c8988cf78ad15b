"""`vidtt run`: answer a JSONL file of requests; resumable, one output record per request id.

Videos are sampled ahead in a pool of worker threads (each video once for all the questions
about it, through the pipeline's frame cache) while the model generates batches of requests
with similar prompt lengths. Every record is appended to the output as soon as it exists; at
the end (or on Ctrl-C) the output is rewritten atomically with exactly one record per id: an
answer wins over an error, and reruns retry failed requests unless told not to.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from vidtt.errors import ConfigError, VidttError
from vidtt.jobs.records import (
    answer_record,
    compact,
    end_line,
    error_text,
    read_output,
    record_line,
)
from vidtt.pipeline.request import Request, parse_line
from vidtt.progress import Counter, TerminalBar

if TYPE_CHECKING:
    from vidtt.pipeline.protocol import PipelineLike

__all__ = [
    "JobPlan",
    "Summary",
    "check_job_files",
    "plan_job",
    "prefix_line",
    "read_output",
    "recording",
    "run_jobs",
]


@dataclass
class Summary:
    """The counts a run reports: answered and failed now, skipped as done before, and what
    the prefix cache did (`prefix_line`; None when no model was loaded)."""

    answered: int = 0
    failed: int = 0
    skipped: int = 0  # answered (or, without retries, failed) in an earlier run
    duplicates: list[str] = field(default_factory=list)
    prefix: str | None = None


def prefix_line(engine: Any) -> str | None:
    """The summary's line on `engine`'s prefix cache: its `PrefixStats.describe()`, or
    `prefix cache: off` (with why, when the model prefills whole); None for an engine that
    has no prefix cache at all (a stand-in)."""
    stats = getattr(engine, "prefix_stats", None)
    if stats is None:
        return None
    now = stats()
    if now is not None:
        return str(now.describe())
    blocker = getattr(engine, "reuse_blocker", None)
    return f"prefix cache: off ({blocker})" if blocker else "prefix cache: off"


def check_job_files(input_path: Path, output_path: Path) -> None:
    """Fail before the model loads when the input is missing or the output cannot be written."""
    if not input_path.is_file():
        raise ConfigError(f"input file {input_path} does not exist: pass a JSONL file of requests")
    if output_path.is_dir():
        raise ConfigError(f"--output {output_path} is a directory: pass a .jsonl file name")
    try:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        with output_path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {output_path}: {exc.strerror or exc}") from None


def read_requests(path: Path) -> tuple[list[tuple[Any, Request | str]], list[str]]:
    """(id, Request or error message) per non-empty line, relative paths resolved against the
    file's folder, and the ids given on more than one line (only their first line is kept)."""
    if not path.is_file():
        raise ConfigError(f"input file {path} does not exist: pass a JSONL file of requests")
    base = path.resolve().parent
    requests: list[tuple[Any, Request | str]] = []
    seen: set[str] = set()
    repeated: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            rid, request = parse_line(line, number)
            if str(rid) in seen:
                if str(rid) not in repeated:
                    repeated.append(str(rid))
                continue
            seen.add(str(rid))
            requests.append(
                (rid, request.with_base(base) if isinstance(request, Request) else request)
            )
    return requests, repeated


@dataclass
class JobPlan:
    """What a run will do: the requests read, the ones to answer, the ids done before."""

    input_path: Path
    output_path: Path
    requests: list[tuple[Any, Request | str]]
    todo: list[tuple[Any, Request | str]]
    summary: Summary

    @property
    def needs_model(self) -> bool:
        return any(isinstance(request, Request) for _, request in self.todo)

    def invalid(self) -> list[str]:
        """The messages of request lines that cannot be answered whatever the model."""
        return [request for _, request in self.todo if isinstance(request, str)]


def plan_job(
    input_path: Path,
    output_path: Path,
    retry_failed: bool = True,
    earlier: dict[str, dict[str, Any]] | None = None,
) -> JobPlan:
    """Read and check every request (no model needed) and find what is left to answer;
    `earlier`: the records kept so far (default: `read_output(output_path)`)."""
    requests, repeated = read_requests(input_path)
    if earlier is None:
        earlier = read_output(output_path)
    done = {k for k, r in earlier.items() if "error" not in r or not retry_failed}
    todo = [(rid, req) for rid, req in requests if str(rid) not in done]
    summary = Summary(skipped=len(requests) - len(todo), duplicates=repeated)
    return JobPlan(input_path, output_path, requests, todo, summary)


def run_jobs(
    pipeline: PipelineLike | None,
    job: JobPlan,
    *,
    timestamps: bool = False,
    workers: int = 2,
    batch_size: int = 8,
    progress: bool = True,
    label: str = "vidtt run",
) -> Summary:
    """Answer the requests `job` has left; `pipeline` may be None when none is valid; the
    progress bar is `label`'s."""
    try:
        with recording(job, label, progress) as write:
            records = answer_all(
                cast("PipelineLike", pipeline),  # (None: every request left is an error)
                job.todo,
                timestamps,
                workers,
                batch_size,
            )
            for record in records:
                write(record)
    finally:
        if pipeline is not None:
            job.summary.prefix = prefix_line(getattr(pipeline, "engine", None))
    return job.summary


@contextmanager
def recording(
    job: JobPlan, label: str, progress: bool
) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A writer of `job`'s records: each appended to its output as it comes, counted in its
    summary and on a progress bar; the output compacted on leaving, however it is left."""
    summary = job.summary
    end_line(job.output_path)
    terminal = TerminalBar(label, "req", shown=progress, log_every=10.0)
    bar = Counter(terminal, len(job.todo))
    try:
        with job.output_path.open("a", encoding="utf-8") as out:

            def write(record: dict[str, Any]) -> None:
                failed = "error" in record
                summary.failed += failed
                summary.answered += not failed
                out.write(record_line(record) + "\n")
                out.flush()
                terminal.note(failed=summary.failed)
                bar.update()

            yield write
    finally:
        bar.close()
        compact(job.output_path, [rid for rid, _ in job.requests])


def answer_all(
    pipeline: PipelineLike,
    todo: list[tuple[Any, Request | str]],
    timestamps: bool,
    workers: int,
    size: int,
) -> Iterator[dict[str, Any]]:
    """One record per request: media sampled by `workers` threads ahead of generation (at most
    2 x `size` requests waiting), batches of up to `size` requests of similar length."""
    requests = iter(todo)
    pending: deque[tuple[Any, Any]] = deque()
    ready: list[tuple[Any, Any]] = []
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="vidtt-media") as pool:

        def refill() -> None:
            for rid, request in requests:
                pending.append((rid, submit(pool, pipeline, request, timestamps)))
                if len(pending) >= 2 * size:
                    return

        refill()
        try:
            while pending or ready:
                while pending and (len(ready) < size or done(pending[0][1])):
                    rid, job = pending.popleft()
                    outcome = job if isinstance(job, str) else failure_or_result(job)
                    if isinstance(outcome, str):
                        yield {"id": rid, "error": outcome}
                    else:
                        ready.append((rid, outcome))
                    refill()
                if ready:
                    batch, ready = take_batch(ready, size)
                    yield from generate_batch(pipeline, batch)
        finally:
            for _, job in pending:
                if isinstance(job, Future):
                    job.cancel()


def done(job: Any) -> bool:
    """Whether a waiting request can be taken now (ready, or never submitted)."""
    return not isinstance(job, Future) or job.done()


def submit(
    pool: ThreadPoolExecutor, pipeline: PipelineLike, request: Request | str, stamps: bool
) -> Any:
    """The request sampling in `pool`, or its error message as it is."""
    if isinstance(request, str):
        return request
    return pool.submit(pipeline.prepare, request, stamps)


def failure_or_result(job: Future[Any]) -> Any:
    """The prepared request, or its error message."""
    try:
        return job.result()
    except (VidttError, ValueError, TypeError, OSError, RecursionError) as exc:
        return error_text(exc)


def take_batch(ready: list[tuple[Any, Any]], size: int) -> tuple[list[Any], list[Any]]:
    """Up to `size` requests that can be generated together, of similar prompt lengths."""
    from vidtt.pipeline.batching import batches

    first = batches([prepared for _, prepared in ready], size)[0]
    return [ready[n] for n in first], [item for n, item in enumerate(ready) if n not in first]


def generate_batch(
    pipeline: PipelineLike, batch: list[tuple[Any, Any]]
) -> Iterator[dict[str, Any]]:
    """One record per request of `batch`, answered together."""
    answers = pipeline.answer_each([prepared for _, prepared in batch])
    for (rid, _), answer in zip(batch, answers):
        yield answer_record(rid, answer)
