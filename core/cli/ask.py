"""`vidtt ask`: answer a question about one or more videos."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import print_stream
from vidtt.cli.settings import prepared
from vidtt.errors import OptionsError

SPAN_FORMATS = ("lines", "json", "srt", "vtt")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ask = subcommand(sub, "ask", "answer a question about one or more videos", common)
    ask.add_argument(
        "videos", nargs="*", metavar="VIDEO", help="video file path or http(s) URL (or --library)"
    )
    ask.add_argument("-q", "--question", required=True, help="what to ask about the videos")
    ask.add_argument("--stream", action="store_true", help="print the answer as it comes")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    ask.add_argument(
        "--when",
        nargs="?",
        const="lines",
        choices=SPAN_FORMATS,
        metavar="lines|json|srt|vtt",
        help="find when: ask for time spans, narrow them with a second look, and print them "
        "(default as lines; json, srt or vtt); one video",
    )
    ask.add_argument(
        "--library",
        metavar="NAME|PATH",
        help="ask across a library (vidtt index): its best-matching moments are shown to the "
        "model, which cites them",
    )
    ask.add_argument(
        "--moments", type=int, default=4, metavar="N", help="with --library: moments shown (4)"
    )
    add_model_options(ask)
    add_request_options(ask)
    ask.set_defaults(func=cmd_ask)
    return ask


def cmd_ask(args: argparse.Namespace) -> int:
    if args.library:
        return ask_library(args)
    if not args.videos:
        raise OptionsError("give the VIDEO to ask about (or --library NAME to ask a library)")
    if args.when and len(args.videos) > 1:
        raise OptionsError("--when finds times in one video: give one VIDEO")
    pipe, clips = prepared(args, args.question)
    pipe.progress = True  # the segments strategy shows its progress on a terminal
    videos = clips if len(clips) > 1 else clips[0]
    asked = {"timestamps": args.timestamps, "spans": bool(args.when)}
    if args.stream:
        stream = pipe.ask(videos, args.question, stream=True, **asked)
        print_stream(stream)
        answer = stream.answer
    else:
        answer = pipe.ask(videos, args.question, **asked)
    if args.json:
        print(answer.model_dump_json(indent=2))
    elif args.when:
        print_spans(answer, args.when, shown=args.stream)
    elif not args.stream:
        print(answer.text)
    return 0


def print_spans(answer: Any, fmt: str, shown: bool) -> None:
    """The answer's spans in `fmt` on stdout; when it names no time, one line on stderr with
    the answer (unless it was streamed there already)."""
    from vidtt.pipeline.spans import format_spans

    if answer.spans:
        print(format_spans(answer.spans, fmt), end="")
        return
    if fmt == "json":
        print("[]")
    said = "" if shown else f": {' '.join(answer.text.split())[:300]}"
    print(f"vidtt: the answer names no time{said}", file=sys.stderr)


def ask_library(args: argparse.Namespace) -> int:
    """`vidtt ask --library NAME -q ...`: the best-matching moments found, each video's frames
    around them sampled, the answer printed with the moments it could cite."""
    from vidtt.cli.settings import build_pipeline, command_settings
    from vidtt.errors import LibraryError
    from vidtt.library import Library
    from vidtt.library.asking import library_message, query_vector, windows

    if args.videos or args.when:
        raise OptionsError("--library asks the library's moments: give no VIDEO and no --when")
    if args.moments < 1:
        raise OptionsError("--moments must be at least 1")
    settings = command_settings(args, None, args.question, ask=True)
    with Library.open(args.library, create=False) as library:
        vector = query_vector(library.embedder, args.question)
        hits = library.search(args.question, vector, limit=args.moments * 5)
    shown = windows(hits, args.moments)
    if not shown:
        raise LibraryError(
            f"no moment of library {args.library!r} matches the question: index more videos "
            "(vidtt index) or ask otherwise"
        )
    pipe = build_pipeline(settings)
    options = pipe.sampler_options
    clips = [
        (
            path,
            start,
            end,
            pipe.sample(path, n, options=options.model_copy(update={"start": start, "end": end})),
        )
        for n, (path, start, end) in enumerate(shown, 1)
    ]
    answer = pipe.chat([library_message(args.question, clips)], timestamps=True)
    if args.json:
        moments = [
            {"moment": n, "path": p, "start": a, "end": b} for n, (p, a, b) in enumerate(shown, 1)
        ]
        print(json.dumps({"answer": answer.model_dump(), "moments": moments}, indent=2))
        return 0
    print(answer.text)
    for number, (path, start, end) in enumerate(shown, 1):
        print(f"  [{number}] {path}  {start:.1f}-{end:.1f} s", file=sys.stderr)
    return 0
