"""`vidtt index`: videos indexed into a library, new and changed ones only (docs/library.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidtt.cli.options import (
    add_long_options,
    add_model_options,
    add_speech_options,
    key_value,
    subcommand,
)
from vidtt.errors import OptionsError


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    from vidtt.cli.run import actors_value

    index = subcommand(sub, "index", "index videos into a library (new and changed only)", common)
    index.add_argument(
        "paths", nargs="+", metavar="PATH", help="video files, folders, globs or a JSONL list"
    )
    add_library(index)
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
    index.add_argument(
        "--transcribe",
        action="store_true",
        help="also index what is said: each transcript line a moment, found by its words",
    )
    index.add_argument(
        "--shots",
        action="store_true",
        help="also index each shot (the scene sampler's cuts and fades) as a moment",
    )
    index.add_argument(
        "--notes",
        action="store_true",
        help="also index segment notes: the model (--model or --config) describes each part "
        "of the video, as vidtt summarize does, and each note is a moment found by its words",
    )
    index.add_argument("--quiet", action="store_true", help="no progress bar")
    add_speech_options(index, prompt=False)
    add_model_options(index)
    add_long_options(index, flag=False)
    index.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="local|auto|ADDRESS",
        help="index on Ray actors: local (the default with no value) starts a private cluster; "
        "auto or HOST:PORT joins a running one; the library must be a shared folder or object "
        "storage (see docs/scale.md)",
    )
    index.add_argument(
        "--actors",
        type=actors_value,
        metavar="N|MIN-MAX",
        help="with --ray: indexing actors, each loading the embedder once (default 1; one GPU "
        "each with -E device=cuda); a range grows the pool while videos wait",
    )
    index.set_defaults(func=cmd_index)


def add_library(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--library",
        required=True,
        metavar="NAME|PATH",
        help="a library's name (kept under VIDTT_LIBRARY_DIR), a folder or an s3:// URI",
    )


def cmd_index(args: argparse.Namespace) -> int:
    """Find the videos, plan against the library, index what is new or changed."""
    from vidtt.library import Library
    from vidtt.library.indexing import find_videos, index_videos, plan_videos

    if args.every <= 0:
        raise OptionsError("--every must be more than 0 seconds")
    if args.ray is None and args.actors is not None:
        raise OptionsError("--actors needs --ray (actors are Ray's)")
    files, folders = find_videos(args.paths)
    work = index_work(args)
    tools = (work if args.ray is None else work.on_cpu()).load()  # Ray's actors embed
    with Library.open(args.library, dim=tools.dimension(), embedder=tools.signature()) as lib:
        plan = plan_videos(lib, files, folders, work)
        if args.ray is not None:
            from vidtt.library.on_ray import index_on_ray

            where = {"address": args.ray, "actors": args.actors or 1}
            done = index_on_ray(lib, plan, work, **where, progress=not args.quiet)
        else:
            done = index_videos(lib, plan, tools, progress=not args.quiet)
    print(
        f"vidtt: {done.indexed} indexed ({done.moments} moments), {done.unchanged} unchanged, "
        f"{done.removed} removed, {len(done.failed)} failed; library {args.library}",
        file=sys.stderr,
    )
    for failure in done.failed[:20]:
        print(f"vidtt: failed: {failure}", file=sys.stderr)
    return 1 if done.failed else 0


def index_work(args: argparse.Namespace) -> Any:
    """The `IndexWork` the command line asks for: the embedder and its `-E` options, `--every`,
    and with `--transcribe` the transcriber (`--transcriber`, `--language`,
    `--transcriber-option`)."""
    from vidtt.library.indexing import IndexWork

    model = [f for f in ("model", "config", "backend", "dtype") if getattr(args, f, None)]
    if model and not args.notes:
        raise OptionsError(f"--{model[0]} is the model that writes notes: give it with --notes")
    heard = dict(args.transcriber_option or [])
    if args.language:
        heard["language"] = args.language
    return IndexWork(
        embedder=args.embedder,
        embedder_options=dict(args.embedder_option or []),
        every=args.every,
        transcriber=(args.transcriber or "whisper") if args.transcribe else None,
        transcriber_options=heard,
        shots=args.shots,
        notes=notes_config(args) if args.notes else None,
    )


def notes_config(args: argparse.Namespace) -> Any:
    """The pipeline config whose model writes `--notes` (checked now, loaded by each process
    that indexes)."""
    from vidtt.cli.settings import command_settings

    return command_settings(args).config
