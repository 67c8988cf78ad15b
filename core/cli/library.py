"""`vidtt index` and `vidtt search`: a video library built once, then searched in moments
(docs/library.md)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidtt.cli.options import key_value, subcommand
from vidtt.errors import OptionsError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """Both commands' parsers."""
    index = subcommand(sub, "index", "index videos into a library (new and changed only)", common)
    index.add_argument(
        "paths", nargs="+", metavar="PATH", help="video files, folders, globs or a JSONL list"
    )
    _add_library(index)
    index.add_argument("--embedder", default="clip", help="the embedder plugin (default clip)")
    index.add_argument(
        "--embedder-option",
        "-E",
        type=key_value,
        action="append",
        metavar="KEY=VALUE",
        help="an embedder option (model=..., device=cuda, batch_size=...)",
    )
    index.add_argument(
        "--every", type=float, default=2.0, metavar="SECONDS", help="a frame every N s (default 2)"
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    index.set_defaults(func=cmd_index)
    search = subcommand(
        sub, "search", "find the moments of a library's videos a text describes", common
    )
    search.add_argument("query", metavar="TEXT", help="what to look for")
    _add_library(search)
    search.add_argument("--limit", type=int, default=10, metavar="N", help="moments (default 10)")
    search.add_argument("--path", metavar="GLOB", help="only videos whose path matches")
    search.add_argument("--json", action="store_true", help="the moments as JSON")
    search.set_defaults(func=cmd_search)


def _add_library(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--library",
        required=True,
        metavar="NAME|PATH",
        help="a library's name (kept under VIDTT_LIBRARY_DIR), a folder or an s3:// URI",
    )


def _embedder(name: str, given: list[tuple[str, Any]] | None) -> tuple[Any, Any]:
    from vidtt.plugins import registry

    embedder = registry.embedder(name)
    return embedder, embedder.options(**dict(given or []))


def cmd_index(args: argparse.Namespace) -> int:
    """Find the videos, plan against the library, index what is new or changed."""
    from vidtt.library import Library
    from vidtt.library.indexing import find_videos, index_videos, plan_videos

    if args.every <= 0:
        raise OptionsError("--every must be more than 0 seconds")
    files, folders = find_videos(args.paths)
    embedder, options = _embedder(args.embedder, args.embedder_option)
    signature = embedder.signature(options)
    with Library.open(args.library, dim=embedder.dimension(options), embedder=signature) as lib:
        plan = plan_videos(lib, files, folders)
        done = index_videos(lib, plan, embedder, options, args.every, progress=not args.quiet)
    print(
        f"vidtt: {done.indexed} indexed ({done.moments} moments), {done.unchanged} unchanged, "
        f"{done.removed} removed, {len(done.failed)} failed; library {args.library}",
        file=sys.stderr,
    )
    for failure in done.failed[:20]:
        print(f"vidtt: failed: {failure}", file=sys.stderr)
    return 1 if done.failed else 0


def cmd_search(args: argparse.Namespace) -> int:
    """The moments that best match the text: word matches and the embedder's vectors."""
    from vidtt.library import Library

    if args.limit < 1:
        raise OptionsError("--limit must be at least 1")
    with Library.open(args.library, create=False) as lib:
        vector = _query_vector(lib.embedder, args.query)
        hits = lib.search(args.query, vector, limit=args.limit, path_glob=args.path)
    if args.json:
        print(json.dumps([hit.as_dict() for hit in hits], indent=2))
        return 0
    for hit in hits:
        text = " ".join(hit.text.split())[:80]
        print(f"{hit.score:.4f}  {hit.path}  {hit.start:.1f}-{hit.end:.1f} s  {hit.kind}  {text}")
    if not hits:
        print("vidtt: no moment matched", file=sys.stderr)
    return 0


def _query_vector(signature: str | None, text: str) -> Any:
    """The text's vector by the embedder the library was made with (its signature), or None
    when that embedder is not installed here (then words alone are searched)."""
    from vidtt.errors import UnknownNameError
    from vidtt.plugins import registry

    name, _, model = (signature or "").partition(":")
    try:
        embedder = registry.embedder(name)
    except UnknownNameError:
        print(f"vidtt: embedder {name!r} is not installed: searching words only", file=sys.stderr)
        return None
    given = {"model": model.rpartition("@")[0]} if model else {}
    return embedder.embed_texts([text], embedder.options(**given))[0]
