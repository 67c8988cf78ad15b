"""`vidtt eval`: answer a benchmark or one's own question set with `vidtt run`'s pipeline, and
score the answers (docs/eval.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vidtt.cli.options import (
    add_config_argument,
    add_model_options,
    add_request_options,
    subcommand,
)
from vidtt.errors import ConfigError, OptionsError


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
        help="where answers, predictions.jsonl and scores.json go; a rerun answers only "
        "the questions left",
    )
    ev.add_argument("--limit", type=int, metavar="N", help="only the first N questions")
    ev.add_argument("--workers", type=int, default=2, metavar="N", help="sampling threads")
    ev.add_argument("--batch-size", type=int, default=8, metavar="N", help="batch size")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_options(ev)
    add_request_options(ev)
    ev.set_defaults(func=cmd_eval)
    return ev


def _output_folder(text: str) -> Path:
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--output {folder} is a file: give a folder for the eval's files")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make --output {folder}: {exc.strerror or exc}") from None
    return folder


def cmd_eval(args: argparse.Namespace) -> int:
    """`vidtt eval SET --output DIR [CONFIG]`: read and check the set, answer what is left,
    score everything answered, print the table."""
    from vidtt.cli.run import answer_job, finish_job, frame_cache, report_job
    from vidtt.cli.settings import command_settings
    from vidtt.eval.run import ANSWERS, load_set, score_answers, table, write_requests
    from vidtt.jobs.local import plan_job
    from vidtt.jobs.records import read_output

    if args.limit is not None and args.limit < 1:
        raise OptionsError("--limit must be at least 1")
    if args.workers < 1 or args.batch_size < 1:
        raise OptionsError("--workers and --batch-size must be at least 1")
    eval_set = load_set(args.set, args.root, args.limit)
    settings = command_settings(args)
    folder = _output_folder(args.output)
    job = plan_job(write_requests(eval_set, folder), folder / ANSWERS)
    report_job(job)
    summary = answer_job(args, settings, job, frame_cache(True))
    scores = score_answers(eval_set, read_output(folder / ANSWERS), folder)
    print("\n".join(table(scores)))
    return finish_job(summary, str(folder / "scores.json"), "scores")
