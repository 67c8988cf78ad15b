"""`vidtt search`: the moments of a library's videos that a text describes (docs/library.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidtt.cli.index import add_library
from vidtt.cli.options import subcommand
from vidtt.errors import OptionsError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    search = subcommand(
        sub, "search", "find the moments of a library's videos a text describes", common
    )
    search.add_argument("query", metavar="TEXT", help="what to look for")
    add_library(search)
    search.add_argument("--limit", type=int, default=10, metavar="N", help="moments (default 10)")
    add_filter_options(search)
    search.add_argument("--json", action="store_true", help="the moments as JSON")
    search.set_defaults(func=cmd_search)


FILTER_FLAGS = ("--path", "--kind", "--since", "--until", "--min-duration", "--max-duration")


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """Which moments a search may find: --path, --kind, --since, --until, --min-duration,
    --max-duration."""
    from vidtt.library.records import KINDS

    group = parser.add_argument_group("which moments")
    group.add_argument("--path", metavar="GLOB", help="only videos whose path matches (* spans /)")
    group.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        help=f"only moments of this kind ({', '.join(KINDS)}); repeatable",
    )
    group.add_argument("--since", metavar="DATE", help="only videos modified on or after DATE")
    group.add_argument("--until", metavar="DATE", help="only videos modified before DATE")
    for bound in ("min", "max"):
        group.add_argument(
            f"--{bound}-duration",
            type=float,
            metavar="SECONDS",
            help=f"only videos {'at least' if bound == 'min' else 'at most'} this long",
        )


def filter_flags_given(args: argparse.Namespace) -> list[str]:
    """The moment filters given on the command line, as flags."""
    return [flag for flag in FILTER_FLAGS if getattr(args, flag[2:].replace("-", "_")) is not None]


def filters_of(args: argparse.Namespace) -> dict[str, Any]:
    """The search filters the command line gives, as `Library.search` takes them."""
    return {
        "path_glob": args.path,
        "kinds": args.kind,
        "since": args.since,
        "until": args.until,
        "min_duration": args.min_duration,
        "max_duration": args.max_duration,
    }


def cmd_search(args: argparse.Namespace) -> int:
    """The moments that best match the text: word matches and the embedder's vectors."""
    from vidtt.library import Library
    from vidtt.library.asking import search

    if args.limit < 1:
        raise OptionsError("--limit must be at least 1")
    with Library.open(args.library, create=False) as lib:
        hits = search(lib, args.query, args.limit, **filters_of(args))
    if args.json:
        print(json.dumps([hit.as_dict() for hit in hits], indent=2))
        return 0
    for hit in hits:
        text = " ".join(hit.text.split())[:80]
        thumbnail = f"  {hit.thumbnail}" if hit.thumbnail else ""
        print(
            f"{hit.score:.4f}  {hit.path}  {hit.start:.1f}-{hit.end:.1f} s  {hit.kind}"
            f"{thumbnail}  {text}".rstrip()
        )
    if not hits:
        print("vidtt: no moment matched", file=sys.stderr)
    return 0
