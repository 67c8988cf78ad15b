"""The `vidtt` command line. User mistakes print one line and exit 2; `--debug` shows tracebacks."""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from vidtt.cli.interrupt import Terminated, exit_interrupted, terminate_as_interrupt
from vidtt.cli.options import (
    add_config_option,
    add_model_options,
    add_request_options,
    add_sampling_options,
)
from vidtt.cli.run import actors_value
from vidtt.errors import VidttError
from vidtt.plugins import registry
from vidtt.urls import redact
from vidtt.version import __version__

FAMILIES = ("samplers", "formatters", "backends")


def _print_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    print(f"vidtt: warning: {message}", file=sys.stderr)


def quiet_transformers() -> None:
    """No progress bars or advice from transformers on the command line (errors still show)."""
    import os

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def plugins_report() -> dict[str, Any]:
    """What `vidtt plugins --json` prints: every component, and every plugin that failed."""
    report: dict[str, Any] = {f: [e.describe() for e in registry.entries(f)] for f in FAMILIES}
    report["errors"] = [
        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
        for p in registry.errors()
    ]
    return report


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def cmd_plugins(args: argparse.Namespace) -> int:
    report = plugins_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for family in FAMILIES:
        rows = [
            [
                e["name"],
                e["plugin"],
                f"{e['distribution'] or '-'} {e['version'] or ''}",
                e["description"],
            ]
            for e in report[family]
        ]
        print(f"{family}:")
        print(table(rows, ["name", "plugin", "from", "description"]) if rows else "  (none)")
        print()
    for error in report["errors"]:
        print(
            f"failed: plugin {error['plugin']} ({error['distribution'] or '?'}): {error['error']}"
        )
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from vidtt.plugins.choose import backend_report

    report = backend_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [
        [
            ("* " if r["selected"] else "  ") + r["name"],
            "yes" if r["available"] else "no",
            str(r["priority"]),
            str(r["device_count"]),
            ", ".join(r["dtypes"]) or "-",
            r["device_name"] or r["reason"] or "",
        ]
        for r in report
    ]
    print(table(rows, ["backend", "available", "priority", "devices", "dtypes", "device / reason"]))
    print("\n* = what `auto` picks; choose with --backend NAME[:INDEX] or VIDTT_BACKEND")
    return 0


def subcommand(
    sub: Any, name: str, help: str, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """A subcommand parser that also takes --debug, and no abbreviated options."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=[common],
        allow_abbrev=False,
    )


def build_parser() -> argparse.ArgumentParser:
    from vidtt.cli import commands
    from vidtt.cli import run as run_command

    parser = argparse.ArgumentParser(
        prog="vidtt",
        description="Ask questions about videos with video language models.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"vidtt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = subcommand(sub, "ask", "answer a question about one or more videos", common)
    ask.add_argument("videos", nargs="+", metavar="VIDEO", help="video file path or http(s) URL")
    ask.add_argument("-q", "--question", required=True, help="what to ask about the videos")
    ask.add_argument("--stream", action="store_true", help="print the answer as it comes")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    add_model_options(ask)
    add_request_options(ask)
    ask.set_defaults(func=commands.cmd_ask)

    chat = subcommand(sub, "chat", "talk about videos, several turns, frames sampled once", common)
    chat.add_argument("videos", nargs="+", metavar="VIDEO", help="video file path or http(s) URL")
    add_model_options(chat)
    add_request_options(chat)
    chat.set_defaults(func=commands.cmd_chat)

    sample = subcommand(sub, "sample", "show which frames a model would see", common)
    sample.add_argument("video", metavar="VIDEO", help="video file path or http(s) URL")
    add_config_option(sample)
    add_sampling_options(sample)
    sample.add_argument(
        "--model",
        help="sample as this model would by default (its video processor's frame rate or "
        "count; reads no weights) and say which rule chose the frames",
    )
    sample.add_argument("--out", metavar="DIR", help="write the frames as PNG files here")
    sample.add_argument(
        "--sheet", metavar="FILE.png", help="write a contact sheet (.png, .jpg or .webp)"
    )
    sample.add_argument("--json", action="store_true", help="print video info and frames")
    sample.add_argument(
        "--explain",
        action="store_true",
        help="with --model: print the frame plan (budget, tokens per frame, frames and size "
        "chosen, and why) without loading the model's weights",
    )
    sample.set_defaults(func=commands.cmd_sample)

    run = subcommand(sub, "run", "answer a JSONL file of requests with a config's pipeline", common)
    run.add_argument("config", metavar="CONFIG", help="the pipeline config file (YAML, TOML, JSON)")
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
    add_model_options(run, config=False)
    add_request_options(run)
    run.set_defaults(func=run_command.cmd_run)

    from vidtt.cli.serve import add_serve_parser

    add_serve_parser(sub, common)

    demo = subcommand(sub, "demo", "a first run with no download: tiny model, made video", common)
    demo.add_argument("--backend", help="auto (default), cpu, cuda, ...")
    demo.set_defaults(func=commands.cmd_demo)

    plugins = subcommand(sub, "plugins", "list samplers, formatters and backends", common)
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.set_defaults(func=cmd_plugins)
    backends = subcommand(sub, "backends", "list device backends and availability", common)
    backends.add_argument("--json", action="store_true", help="print a JSON list")
    backends.set_defaults(func=cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (Ctrl-C: 130, SIGTERM: 143, closed output
    pipe: 141)."""
    try:
        with terminate_as_interrupt():
            code = _main(argv)
            sys.stdout.flush()
    except KeyboardInterrupt as stop:
        return exit_interrupted(terminated=isinstance(stop, Terminated))
    except BrokenPipeError:
        return quiet_broken_pipe()
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    warnings.showwarning = _print_warning
    quiet_transformers()
    try:
        return int(args.func(args))
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except (VidttError, OSError) as exc:
        if args.debug:
            raise
        print(f"vidtt: error: {redact(str(exc))}", file=sys.stderr)
        return 2


def quiet_broken_pipe() -> int:
    """The reader of our output went away (`vidtt plugins | head`): stop without a word."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit cannot fail again
    except (OSError, ValueError):
        pass
    return 141  # what a shell reports for a process ended by SIGPIPE
