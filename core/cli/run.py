"""`vidtt run`: answer a JSONL file of requests here (`vidtt.jobs.local`) or on Ray (`--ray`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.cli.options import (
    add_config_argument,
    add_model_options,
    add_request_options,
    subcommand,
)
from vidtt.cli.settings import build_pipeline, command_settings
from vidtt.errors import OptionsError

if TYPE_CHECKING:  # the jobs modules are imported inside the commands, when they run
    from vidtt.jobs.local import JobPlan, Summary


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    run = subcommand(sub, "run", "answer a JSONL file of requests with a config's pipeline", common)
    add_config_argument(run)
    run.add_argument(
        "--input",
        required=True,
        metavar="REQUESTS.jsonl",
        help='one request a line: {"id": ..., "videos": [...], "question": ...}',
    )
    run.add_argument(
        "--output",
        required=True,
        metavar="ANSWERS.jsonl",
        help="one record per request id; reruns skip answered ids and retry failed ones",
    )
    _add_job_options(run)
    add_ray_options(run)
    add_model_options(run)
    add_request_options(run)
    run.set_defaults(func=cmd_run)
    return run


def _add_job_options(run: argparse.ArgumentParser) -> None:
    """--workers, --batch-size, --no-retry-failed, --quiet, --no-cache."""
    run.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="threads sampling videos ahead of the model (default 2; with --ray, sampling "
        "actors grow over the cluster's free CPUs instead)",
    )
    run.add_argument(
        "--batch-size",
        type=int,
        default=8,
        metavar="N",
        help="requests generated together, of similar prompt length (default 8)",
    )
    run.add_argument(
        "--no-retry-failed",
        dest="retry_failed",
        action="store_false",
        help="keep the error records of an earlier run instead of retrying those requests",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--no-cache",
        dest="cache",
        action="store_false",
        help="sample every video afresh: neither read nor write the frame cache on disk "
        "(VIDTT_CACHE_DIR; see vidtt cache); runs on Ray keep their frames in memory only",
    )


def add_ray_options(run: argparse.ArgumentParser) -> None:
    """--ray and --actors."""
    run.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="local|auto|ADDRESS",
        help="run on Ray Data: local (the default with no value) starts a private cluster; "
        "auto or HOST:PORT joins a running one (pip install 'vidtt[ray]'; see docs/scale.md)",
    )
    run.add_argument(
        "--actors",
        type=actors_value,
        metavar="N|MIN-MAX",
        help="with --ray: generation actors, each loading the model once (default 1); a range "
        "lets Ray grow the pool with the work",
    )


def cmd_run(args: argparse.Namespace) -> int:
    """`vidtt run [CONFIG | --config CONFIG] --input FILE --output FILE`, here or (`--ray`) on
    a Ray cluster."""
    ray = getattr(args, "ray", None)
    if ray is None and getattr(args, "actors", None) is not None:
        raise OptionsError("--actors needs --ray (actors are Ray's)")
    settings = command_settings(args)
    if args.workers < 1 or args.batch_size < 1:
        raise OptionsError("--workers and --batch-size must be at least 1")
    if ray is not None:
        from vidtt.jobs.ray import plan
        from vidtt.jobs.ray_cluster import import_ray

        import_ray()
        job = plan(args.input, args.output, retry_failed=args.retry_failed)
    else:
        from vidtt.jobs.local import check_job_files, plan_job

        check_job_files(Path(args.input), Path(args.output))
        job = plan_job(Path(args.input), Path(args.output), retry_failed=args.retry_failed)
    report_job(job)
    summary = answer_job(args, settings, job, frame_cache(args.cache) if ray is None else None)
    return finish_job(summary, args.output)


def answer_job(
    args: argparse.Namespace, settings: Any, job: JobPlan, cache: Any, pipeline: Any = None
) -> Summary:
    """Answer what `job` has left, on Ray with `--ray` (each actor loading the model), else here
    with `pipeline` or one loaded now (only when something is left to answer), with the
    command's --workers, --batch-size, --quiet, --timestamps and --actors."""
    if getattr(args, "ray", None) is not None:
        from vidtt.jobs.ray import execute
        from vidtt.jobs.ray_cluster import import_ray

        import_ray()
        return execute(
            settings.config,
            job,
            address=args.ray,
            actors=args.actors or 1,
            batch_size=args.batch_size,
            timestamps=args.timestamps,
            progress=not args.quiet,
        )
    from vidtt.jobs.local import run_jobs

    if pipeline is None and job.needs_model:
        pipeline = build_pipeline(settings, cache=cache)
    return run_jobs(
        pipeline,
        job,
        timestamps=args.timestamps,
        workers=args.workers,
        batch_size=args.batch_size,
        progress=not args.quiet,
        label=f"vidtt {getattr(args, 'command', None) or 'run'}",
    )


def frame_cache(on_disk: bool) -> Any:
    """The run's frame cache: in memory, and (unless --no-cache) on disk, shared with other
    runs, so a dataset asked twice is decoded once."""
    from vidtt.media.frame_cache import FrameCache
    from vidtt.media.store import default_store

    return FrameCache(store=default_store()) if on_disk else FrameCache()


def finish_job(summary: Summary, output: str, kept: str = "answers") -> int:
    """Say what a run did (and where its `kept` results are); its exit status (1 when any
    request failed)."""
    print(
        f"vidtt: {summary.answered} answered, {summary.failed} failed, {summary.skipped} "
        f"already done; {kept} in {output}",
        file=sys.stderr,
    )
    if summary.prefix:
        print(f"vidtt: {summary.prefix}", file=sys.stderr)
    return 1 if summary.failed else 0


def report_job(job: JobPlan) -> None:
    """Before the model loads: the lines that will fail and the ids given twice."""
    invalid = job.invalid()
    if invalid:
        more = f" (and {len(invalid) - 1} more)" if len(invalid) > 1 else ""
        print(
            f"vidtt: {len(invalid)} request line(s) are invalid and will be recorded as errors: "
            f"{invalid[0]}{more}",
            file=sys.stderr,
        )
    if job.summary.duplicates:
        shown = ", ".join(job.summary.duplicates[:5])
        print(f"vidtt: ids on more than one line (the first is answered): {shown}", file=sys.stderr)


def actors_value(text: str) -> Any:
    """`N` or `MIN-MAX` for argparse (`--actors`)."""
    from vidtt.jobs.ray import parse_actors

    try:
        return parse_actors(text)
    except OptionsError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2] or str(exc)) from None
