"""`vidtt plugins`: list the samplers, formatters and backends, and the plugins that failed."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vidtt.cli.options import subcommand
from vidtt.cli.output import table
from vidtt.plugins import registry


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    plugins = subcommand(sub, "plugins", "list samplers, formatters and backends", common)
    plugins.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.set_defaults(func=cmd_plugins)
    return plugins


def plugins_report() -> dict[str, Any]:
    """What `vidtt plugins --json` prints: every component, and every plugin that failed."""
    report: dict[str, Any] = {
        f: [e.describe() for e in registry.entries(f)] for f in registry.FAMILIES
    }
    report["errors"] = [
        {"plugin": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
        for p in registry.errors()
    ]
    return report


def cmd_plugins(args: argparse.Namespace) -> int:
    report = plugins_report()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for family in registry.FAMILIES:
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
