"""`vidtt ask`: answer a question about one or more videos."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import print_stream
from vidtt.cli.settings import prepared
from vidtt.errors import OptionsError

SPAN_FORMATS = ("lines", "json", "srt", "vtt")


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ask = subcommand(sub, "ask", "answer a question about one or more videos", common)
    ask.add_argument("videos", nargs="+", metavar="VIDEO", help="video file path or http(s) URL")
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
    add_model_options(ask)
    add_request_options(ask)
    ask.set_defaults(func=cmd_ask)
    return ask


def cmd_ask(args: argparse.Namespace) -> int:
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
