"""The `vidtt` command line. User mistakes print one line and exit 2; `--debug` shows tracebacks."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import registry
from .config import DEFAULT_MODEL
from .errors import VidttError
from .version import __version__

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
    from .devices import backend_report

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


def add_sampling(parser: argparse.ArgumentParser, every: bool = False) -> None:
    group = parser.add_argument_group("sampling")
    group.add_argument("--sampler", help="uniform, keyframe, interval or a plugin's sampler")
    group.add_argument("--frames", type=int, help="how many frames (at most, for interval)")
    group.add_argument("--fps", type=float, help="frames per second (interval sampler)")
    if every:
        group.add_argument("--every", type=float, help="seconds between frames (interval)")
    group.add_argument("--size", type=int, help="shorter side of the frames, in pixels")
    group.add_argument("--start", type=float, help="seconds: sample from here")
    group.add_argument("--end", type=float, help="seconds: sample up to here")


def add_model(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", help=f"hub id or local folder (default {DEFAULT_MODEL})")
    group.add_argument("--config", help="a pipeline config file (YAML, TOML or JSON)")
    group.add_argument("--backend", help="auto, cpu, cuda, cuda:1, xpu, mps, npu")
    group.add_argument("--dtype", help="auto, float32, float16, bfloat16")
    group.add_argument("--max-new-tokens", type=int, dest="max_new_tokens")


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = argparse.ArgumentParser(
        prog="vidtt", description="Ask questions about videos with video language models."
    )
    parser.add_argument("--version", action="version", version=f"vidtt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = sub.add_parser("ask", help="answer a question about one or more videos")
    ask.add_argument("videos", nargs="+", metavar="VIDEO", help="path or http(s) URL")
    ask.add_argument("-q", "--question", required=True)
    ask.add_argument("--stream", action="store_true", help="print the answer as it comes")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    add_model(ask)
    add_sampling(ask)
    ask.set_defaults(func=commands.cmd_ask)

    chat = sub.add_parser("chat", help="talk about videos, several turns, frames sampled once")
    chat.add_argument("videos", nargs="+", metavar="VIDEO")
    add_model(chat)
    add_sampling(chat)
    chat.set_defaults(func=commands.cmd_chat)

    sample = sub.add_parser("sample", help="show which frames a model would see")
    sample.add_argument("video", metavar="VIDEO")
    add_sampling(sample, every=True)
    sample.add_argument("--out", metavar="DIR", help="write the frames as PNG files here")
    sample.add_argument("--sheet", metavar="FILE.png", help="write a contact sheet")
    sample.add_argument("--json", action="store_true", help="print video info and frames")
    sample.set_defaults(func=commands.cmd_sample)

    run = sub.add_parser("run", help="answer a JSONL file of requests with a config's pipeline")
    run.add_argument("config", metavar="CONFIG")
    run.add_argument("--input", required=True, metavar="REQUESTS.jsonl")
    run.add_argument("--output", required=True, metavar="ANSWERS.jsonl")
    run.set_defaults(func=commands.cmd_run)

    demo = sub.add_parser("demo", help="a first run with no download: tiny model, made video")
    demo.add_argument("--backend", help="default: auto")
    demo.set_defaults(func=commands.cmd_demo)

    plugins = sub.add_parser("plugins", help="list samplers, formatters and backends")
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.set_defaults(func=cmd_plugins)
    backends = sub.add_parser("backends", help="list device backends and availability")
    backends.add_argument("--json", action="store_true", help="print a JSON list")
    backends.set_defaults(func=cmd_backends)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    warnings.showwarning = _print_warning
    quiet_transformers()
    try:
        return int(args.func(args))
    except (VidttError, OSError) as exc:
        if args.debug:
            raise
        print(f"vidtt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidtt: interrupted", file=sys.stderr)
        return 130
