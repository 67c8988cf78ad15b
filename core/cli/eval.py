"""`vidtt eval`: answer a benchmark or one's own question set with `vidtt run`'s pipeline (here,
on Ray, or on a running server), under one setting or a sweep of them, and score the answers
(docs/eval.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.cli.options import (
    add_config_argument,
    add_model_options,
    add_request_options,
    subcommand,
)
from vidtt.cli.run import add_ray_options
from vidtt.errors import ConfigError, OptionsError
from vidtt.pipeline.request import PASSED_OPTIONS

if TYPE_CHECKING:
    from vidtt.eval.run import EvalSet
    from vidtt.jobs.local import JobPlan, Summary
    from vidtt.settings.resolve import Settings

# what a config or the command line may set that only a loaded model uses: with --server the
# server's own settings answer, so these are refused rather than silently not applied
SERVER_OWNS = (
    "revision",
    "dtype",
    "backend",
    "device_map",
    "formatter",
    "transcriber",
    "transcriber_options",
    "prefix_cache",
    "prefix_cache_mb",
    "trust_remote_code",
    "plugins",
    "disable_plugins",
)
# config fields every request can carry (sent to a server with each one)
REQUEST_FIELDS = ("sampler", "sampler_options", "generation", *PASSED_OPTIONS)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ev = subcommand(sub, "eval", "answer a question set and score the answers", common)
    ev.add_argument(
        "set",
        metavar="SET",
        help="a benchmark's name (videomme, mvbench, longvideobench, mlvu, charades_sta, "
        "timelens) with --root, or a JSONL file of questions (docs/eval.md)",
    )
    add_config_argument(ev)
    ev.add_argument("--root", metavar="FOLDER", help="the folder the benchmark was downloaded to")
    ev.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="where answers, predictions.jsonl, scores.json and the report go; a rerun "
        "answers only the questions left",
    )
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    ev.add_argument(
        "--sweep",
        nargs="+",
        metavar="KEY=V1,V2",
        help="answer under every combination of these settings (e.g. frames=8,16,32 "
        "sampler=uniform,scene transcript=off,on), one model for all, and write a report",
    )
    ev.add_argument(
        "--judge",
        metavar="MODEL|URL",
        help="also score open answers by a judge: a causal LM (hub id or folder) or an "
        "OpenAI-compatible server's URL",
    )
    ev.add_argument("--workers", type=int, default=2, metavar="N", help="sampling threads")
    ev.add_argument("--batch-size", type=int, default=8, metavar="N", help="batch size")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_server_options(ev)
    add_ray_options(ev)
    add_model_options(ev)
    add_request_options(ev)
    ev.set_defaults(func=cmd_eval)
    return ev


def _add_server_options(ev: argparse.ArgumentParser) -> None:
    group = ev.add_argument_group("a running server (instead of a model here)")
    group.add_argument(
        "--server",
        metavar="URL",
        help="ask a running vidtt serve or OpenAI-compatible server (--model: the served "
        "model's name; the request options are sent with each question)",
    )
    group.add_argument("--api-key", metavar="KEY", help="the server's API key (or VIDTT_API_KEY)")
    group.add_argument(
        "--server-media",
        choices=("auto", "upload", "data", "file"),
        default="auto",
        help="how videos reach the server: upload (vidtt), data: URLs, file:// paths; "
        "auto: upload to a vidtt server, data: URLs otherwise",
    )
    group.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="requests in flight (--server)"
    )


def _output_folder(text: str) -> Path:
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file: give a folder for the eval's files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make --output {folder}: {exc.strerror or exc}") from None
    return folder


def _check_args(args: argparse.Namespace) -> None:
    if args.limit is not None and args.limit < 1:
        raise OptionsError("--limit must be at least 1")
    if args.workers < 1 or args.batch_size < 1 or args.concurrency < 1:
        raise OptionsError("--workers, --batch-size and --concurrency must be at least 1")
    if args.server and args.ray is not None:
        raise OptionsError("--server and --ray: give one (the server answers, or Ray does)")
    if args.actors is not None and args.ray is None:
        raise OptionsError("--actors needs --ray (actors are Ray's)")


def server_fields(settings: Settings) -> dict[str, Any]:
    """With --server: the request fields the config and command line set (sent with each
    question); a setting only a loaded model uses is one error naming it."""
    given = settings.config.model_dump(exclude_unset=True)
    owned = [key for key in SERVER_OWNS if key in given]
    if owned:
        raise OptionsError(
            f"--server: the server chooses {', '.join(owned)}; leave that out of the command "
            "line and config (only request options are sent with each question)"
        )
    return {key: given[key] for key in REQUEST_FIELDS if given.get(key) not in (None, {})}


def _grid(args: argparse.Namespace, settings: Settings) -> list[tuple[dict, dict]]:
    """(setting, its request fields) per point of the sweep; one empty setting without it."""
    from vidtt.eval.sweep import check_setting, parse_sweep, request_fields

    base = server_fields(settings) if args.server else {}
    points = []
    for setting in parse_sweep(args.sweep) if args.sweep else [{}]:
        fields = request_fields(setting, settings.registry, settings.config.sampler)
        options = {**base.get("sampler_options", {}), **fields.get("sampler_options", {})}
        fields = {**base, **fields, **({"sampler_options": options} if options else {})}
        check_setting(setting, fields)
        points.append((setting, fields))
    return points


def cmd_eval(args: argparse.Namespace) -> int:
    """`vidtt eval SET --output DIR [CONFIG]`: read and check the set and the sweep, answer what
    is left under each setting, score everything answered, print the table, write the report."""
    from vidtt.cli.settings import command_settings
    from vidtt.eval.run import load_set
    from vidtt.eval.sweep import setting_folder

    _check_args(args)
    eval_set = load_set(args.set, args.root, args.limit)
    settings = command_settings(args)
    grid = _grid(args, settings)  # every setting checked before any model loads
    folder = _output_folder(args.output)
    judge = _judge(args, settings)
    answer = _answerer(args, settings)
    points, summaries = [], []
    for setting, fields in grid:
        sub = folder / setting_folder(setting) if setting else folder
        point, summary = _evaluate(eval_set, sub, setting, fields, answer, judge)
        point["folder"] = str(sub.relative_to(folder)) if setting else "."
        points.append(point)
        summaries.append(summary)
    return _finish(folder, points, summaries)


def _evaluate(
    eval_set: EvalSet, folder: Path, setting: dict, fields: dict, answer: Any, judge: Any
) -> tuple[dict[str, Any], Summary]:
    """Answer and score one setting in `folder`; its report point and the run's summary."""
    from vidtt.cli.run import report_job
    from vidtt.eval.run import (
        ANSWERS,
        cost_of,
        outcomes_of,
        score_answers,
        table,
        write_requests,
    )
    from vidtt.eval.sweep import setting_name
    from vidtt.jobs.local import plan_job
    from vidtt.jobs.records import read_output

    job = plan_job(write_requests(eval_set, folder, fields), folder / ANSWERS)
    report_job(job)
    started = time.perf_counter()
    summary = answer(job)
    wall = time.perf_counter() - started
    scores, lines = score_answers(eval_set, read_output(folder / ANSWERS), folder, judge)
    name = setting_name(setting)
    print("\n".join(([f"== {name}"] if name else []) + table(scores)))
    cost = {**cost_of(lines), "wall_seconds": wall if summary.answered else None}
    point = {"name": name or eval_set.name, "setting": setting, "scores": scores, "cost": cost}
    return {**point, "outcomes": outcomes_of(lines)}, summary


def _finish(folder: Path, points: list[dict], summaries: list[Summary]) -> int:
    """Write the report, print its table when settings were swept, say what was done (the
    counts of every setting together, the prefix cache as the last setting left it)."""
    from vidtt.cli.run import finish_job
    from vidtt.eval.report import report_lines, write_report

    title = f"vidtt eval: {points[0]['scores'].get('set', '')}"
    write_report(folder, points, title=title, plots=len(points) > 1)
    if len(points) > 1:
        print("\n".join(report_lines(points)))
    total = summaries[-1]
    for name in ("answered", "failed", "skipped"):
        setattr(total, name, sum(getattr(one, name) for one in summaries))
    return finish_job(total, str(folder / "report.html"), "report")


def _judge(args: argparse.Namespace, settings: Settings) -> Any:
    """The judge of open answers (None without --judge), made before any answer is asked."""
    if not args.judge:
        return None
    from vidtt.eval.judge import judge_from
    from vidtt.plugins.choose import select_backend

    backend = select_backend(settings.config.backend, settings.registry)  # the run's device
    return judge_from(args.judge, api_key=_api_key(args), device=backend.device)


def _api_key(args: argparse.Namespace) -> str | None:
    import os

    return args.api_key or os.environ.get("VIDTT_API_KEY") or None


def _answerer(args: argparse.Namespace, settings: Settings) -> Any:
    """`answer(job) -> Summary`: on the server, on Ray, or here with one pipeline (and its
    frame and prefix caches) loaded once, when a job first needs it, for every setting."""
    if args.server:
        from vidtt.eval.server import answer_on_server

        return lambda job: answer_on_server(
            args.server,
            job,
            model=args.model,
            api_key=_api_key(args),
            concurrency=args.concurrency,
            media=args.server_media,
            progress=not args.quiet,
        )
    from vidtt.cli.run import answer_job, frame_cache

    if args.ray is not None:
        return lambda job: answer_job(args, settings, job, None)
    shared: dict[str, Any] = {}

    def answer(job: JobPlan) -> Summary:
        if job.needs_model and "pipe" not in shared:
            from vidtt.cli.settings import build_pipeline

            shared["pipe"] = build_pipeline(settings, cache=frame_cache(True))
        return answer_job(args, settings, job, None, pipeline=shared.get("pipe"))

    return answer
