"""The `vidtt` command line. User mistakes print one line and exit 2; `--debug` shows tracebacks."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from . import registry
from .errors import VidttError
from .version import __version__

FAMILIES = ("samplers", "formatters", "backends")


def _print_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    print(f"vidtt: warning: {message}", file=sys.stderr)


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidtt", description="Ask questions about videos with video language models."
    )
    parser.add_argument("--version", action="version", version=f"vidtt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    plugins = commands.add_parser("plugins", help="list samplers, formatters and backends")
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.set_defaults(func=cmd_plugins)
    backends = commands.add_parser("backends", help="list device backends and availability")
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
    try:
        return int(args.func(args))
    except VidttError as exc:
        if args.debug:
            raise
        print(f"vidtt: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("vidtt: interrupted", file=sys.stderr)
        return 130
