"""`vidtt summarize`: a long video's timeline (what happens in each part), with no question:
JSON, Markdown with times, or WebVTT chapters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vidtt.cli.options import (
    add_generation_options,
    add_long_options,
    add_model_options,
    add_sampling_options,
    add_speech_options,
    subcommand,
)
from vidtt.types import TIMELINE_FORMATS

SUFFIXES = {".json": "json", ".md": "md", ".markdown": "md", ".vtt": "vtt"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    summarize = subcommand(
        sub,
        "summarize",
        "write a video's timeline: each part described (JSON, Markdown or WebVTT chapters)",
        common,
    )
    summarize.add_argument("video", metavar="VIDEO", help="video file path or http(s) URL")
    summarize.add_argument(
        "-f",
        "--format",
        choices=TIMELINE_FORMATS,
        help="json, md (Markdown with times) or vtt (WebVTT chapters) (default: from "
        "--output's suffix, else md)",
    )
    summarize.add_argument(
        "--output", metavar="FILE", help="write to FILE (default: standard output)"
    )
    add_model_options(summarize)
    add_sampling_options(summarize)
    add_long_options(summarize, flag=False)
    add_speech_options(summarize)
    add_generation_options(summarize)
    summarize.set_defaults(func=cmd_summarize, strategy="segments", timestamps=False)
    return summarize


def output_format(args: argparse.Namespace) -> str:
    """--format, else the one --output's suffix names, else Markdown."""
    if args.format:
        return str(args.format)
    return SUFFIXES.get(Path(args.output).suffix.lower(), "md") if args.output else "md"


def cmd_summarize(args: argparse.Namespace) -> int:
    from vidtt.cli.settings import build_pipeline, command_settings, with_frame_rule
    from vidtt.pipeline import segments
    from vidtt.types import render_timeline

    fmt = output_format(args)
    settings = command_settings(args, [args.video])
    settings, processor = with_frame_rule(settings)
    pipe = build_pipeline(settings, processor)
    pipe.progress = True
    line = segments.timeline(pipe, {"videos": [args.video]})
    text = render_timeline(line.notes, fmt, f"Timeline of {Path(str(args.video)).name}")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0
