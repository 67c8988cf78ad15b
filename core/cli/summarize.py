"""`vidtt summarize`: a long video's timeline (what happens in each part), with no question:
JSON, Markdown with times, or WebVTT chapters."""

from __future__ import annotations

import argparse
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
from vidtt.cli.output import add_document_options, document_format, write_document
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
    add_document_options(
        summarize, TIMELINE_FORMATS, "json, md (Markdown with times) or vtt (WebVTT chapters)", "md"
    )
    add_model_options(summarize)
    add_sampling_options(summarize)
    add_long_options(summarize, flag=False)
    add_speech_options(summarize)
    add_generation_options(summarize)
    summarize.set_defaults(func=cmd_summarize, strategy="segments", timestamps=False)
    return summarize


def cmd_summarize(args: argparse.Namespace) -> int:
    from vidtt.cli.settings import build_pipeline, command_settings, with_frame_rule
    from vidtt.pipeline import notes
    from vidtt.types import render_timeline

    fmt = document_format(args, SUFFIXES, "md")
    settings = command_settings(args, [args.video])
    settings, processor = with_frame_rule(settings)
    pipe = build_pipeline(settings, processor)
    pipe.progress = True
    line = notes.timeline(pipe, {"videos": [args.video]})
    write_document(
        args, render_timeline(line.notes, fmt, f"Timeline of {Path(str(args.video)).name}")
    )
    return 0
