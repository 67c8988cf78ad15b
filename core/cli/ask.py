"""`vidtt ask`: answer a question about one or more videos."""

from __future__ import annotations

import argparse
from typing import Any

from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import print_stream
from vidtt.cli.settings import prepared


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    ask = subcommand(sub, "ask", "answer a question about one or more videos", common)
    ask.add_argument("videos", nargs="+", metavar="VIDEO", help="video file path or http(s) URL")
    ask.add_argument("-q", "--question", required=True, help="what to ask about the videos")
    ask.add_argument("--stream", action="store_true", help="print the answer as it comes")
    ask.add_argument("--json", action="store_true", help="print the whole Answer as JSON")
    add_model_options(ask)
    add_request_options(ask)
    ask.set_defaults(func=cmd_ask)
    return ask


def cmd_ask(args: argparse.Namespace) -> int:
    pipe, clips = prepared(args, args.question)
    pipe.progress = True  # the segments strategy shows its progress on a terminal
    videos = clips if len(clips) > 1 else clips[0]
    if args.stream:
        stream = pipe.ask(videos, args.question, stream=True, timestamps=args.timestamps)
        print_stream(stream)
        if args.json:
            print(stream.answer.model_dump_json(indent=2))
        return 0
    answer = pipe.ask(videos, args.question, timestamps=args.timestamps)
    print(answer.model_dump_json(indent=2) if args.json else answer.text)
    return 0
