"""`vidtt cache`: what the on-disk cache (`vidtt.media.store`) holds, and clearing it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vidtt.cli.options import subcommand
from vidtt.cli.output import table
from vidtt.errors import OptionsError
from vidtt.media.store import KINDS, Store, cache_dir, known_kinds, max_bytes_setting


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    cache = subcommand(sub, "cache", "show or clear the cache of sampled frames and notes", common)
    cache.add_argument(
        "action",
        nargs="?",
        choices=("info", "clear"),
        default="info",
        help="info (the default): the folder, each kind's entries and size, the limit; "
        "clear: remove the entries",
    )
    cache.add_argument(
        "--kind",
        metavar="|".join(KINDS),
        help="only this kind of entry (default: every kind)",
    )
    cache.add_argument("--json", action="store_true", help="print one JSON object")
    cache.add_argument(
        "--dir",
        metavar="DIR",
        help="the cache folder (default: $VIDTT_CACHE_DIR, else $XDG_CACHE_HOME/vidtt, else "
        "~/.cache/vidtt)",
    )
    cache.set_defaults(func=cmd_cache)
    return cache


def cmd_cache(args: argparse.Namespace) -> int:
    """`vidtt cache [info|clear] [--kind KIND] [--json] [--dir DIR]`."""
    store = Store(Path(args.dir).expanduser() if args.dir else cache_dir(), max_bytes_setting())
    store.check()
    kinds = known_kinds(store)
    if args.kind is not None and args.kind not in kinds:
        raise OptionsError(f"unknown cache kind {args.kind!r}: the kinds are {', '.join(kinds)}")
    if args.action == "clear":
        return _clear(store, args)
    report = cache_report(store, [args.kind] if args.kind else kinds)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    rows = [
        [kind, str(k["entries"]), human_bytes(k["bytes"])] for kind, k in report["kinds"].items()
    ]
    rows.append(["total", str(report["entries"]), human_bytes(report["bytes"])])
    print(f"cache folder: {report['folder']}")
    print(table(rows, ["kind", "entries", "size"]))
    print(
        f"limit: {human_bytes(report['max_bytes'])} (VIDTT_CACHE_MAX_BYTES); the least "
        "recently used entries go first"
    )
    return 0


def cache_report(store: Store, kinds: list[str]) -> dict[str, Any]:
    """What `vidtt cache --json` prints."""
    usage = store.usage()
    shown = {kind: usage.get(kind, (0, 0)) for kind in kinds}
    return {
        "folder": str(store.root),
        "max_bytes": store.max_bytes,
        "kinds": {kind: {"entries": n, "bytes": size} for kind, (n, size) in shown.items()},
        "entries": sum(n for n, _ in shown.values()),
        "bytes": sum(size for _, size in shown.values()),
    }


def _clear(store: Store, args: argparse.Namespace) -> int:
    removed = store.clear(args.kind)
    if args.json:
        print(json.dumps({"folder": str(store.root), "kind": args.kind, "removed": removed}))
    else:
        what = "entry" if removed == 1 else "entries"
        kind = f" of kind {args.kind}" if args.kind else ""
        print(f"removed {removed} {what}{kind} from {store.root}")
    return 0


def human_bytes(size: int) -> str:
    """`512 B`, `1.5 KiB`, `2.0 GiB`."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
