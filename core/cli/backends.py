"""`vidtt backends`: list the device backends, whether each is available, and which `auto` picks."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidtt.cli.options import subcommand
from vidtt.cli.output import table


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    backends = subcommand(sub, "backends", "list device backends and availability", common)
    backends.add_argument("--json", action="store_true", help="print a JSON list")
    backends.set_defaults(func=cmd_backends)
    return backends


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
