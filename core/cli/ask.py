"""`vidtt ask`: answer a question about one or more videos."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import print_stream
from vidtt.cli.search import add_filter_options, filter_flags_given, filters_of
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
    add_filter_options(ask)
    add_model_options(ask)
    add_request_options(ask)
    ask.set_defaults(func=cmd_ask)
    return ask


def cmd_ask(args: argparse.Namespace) -> int:
    if args.library:
        return ask_library(args)
    if not args.videos:
        raise OptionsError("give the VIDEO to ask about (or --library NAME to ask a library)")
    given = filter_flags_given(args)
    if given:
        raise OptionsError(f"{given[0]} chooses a library's moments: give it with --library NAME")
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
    around them sampled, the answer printed with the moments it could cite (and with `--when`,
    the time spans it names, by moment)."""
    from vidtt.cli.settings import build_pipeline, command_settings
    from vidtt.library import Library
    from vidtt.library.asking import answer_moments, best_moments

    if args.videos:
        raise OptionsError("--library asks the library's moments: give no VIDEO")
    if args.moments < 1:
        raise OptionsError("--moments must be at least 1")
    settings = command_settings(args, None, args.question, ask=True)
    with Library.open(args.library, create=False) as library:
        shown = best_moments(library, args.question, args.moments, **filters_of(args))
    pipe = build_pipeline(settings)
    found = answer_moments(pipe, args.question, shown, spans=bool(args.when))
    if args.json:
        print(json.dumps(found.as_dict(), indent=2))
        return 0
    print(found.answer.text)
    for moment in found.moments:
        spans = "".join(f"  [{s.start:.1f}-{s.end:.1f} s]" for s in moment.spans)
        print(
            f"  [{moment.number}] {moment.path}  {moment.start:.1f}-{moment.end:.1f} s{spans}",
            file=sys.stderr,
        )
    return 0
