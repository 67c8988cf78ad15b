"""`vidtt transcribe`: what is said in a video, as timed text, SRT, WebVTT or JSON."""

from __future__ import annotations

import argparse
from typing import Any

from vidtt.cli.options import add_config_option, add_speech_options, subcommand
from vidtt.cli.output import add_document_options, document_format, write_document
from vidtt.cli.settings import command_settings
from vidtt.progress import TerminalBar
from vidtt.types import TRANSCRIPT_FORMATS

SUFFIXES = {".srt": "srt", ".vtt": "vtt", ".json": "json", ".txt": "text"}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    transcribe = subcommand(
        sub, "transcribe", "write what is said in a video (text, SRT, WebVTT or JSON)", common
    )
    transcribe.add_argument("video", metavar="VIDEO", help="video or audio file, or http(s) URL")
    add_document_options(
        transcribe, TRANSCRIPT_FORMATS, "text (timed lines), srt, vtt or json", "text"
    )
    transcribe.add_argument("--start", type=float, metavar="S", help="from S seconds")
    transcribe.add_argument("--end", type=float, metavar="S", help="up to S seconds")
    group = transcribe.add_argument_group("where it runs")
    add_config_option(group)
    group.add_argument("--backend", help="auto (default), cpu, cuda, cuda:1, xpu, mps, npu")
    group.add_argument("--dtype", help="auto (default), float32, float16 or bfloat16")
    add_speech_options(transcribe, prompt=False)
    transcribe.set_defaults(func=cmd_transcribe)
    return transcribe


def cmd_transcribe(args: argparse.Namespace) -> int:
    from vidtt.pipeline.speech import Speech
    from vidtt.plugins.choose import select_backend

    fmt = document_format(args, SUFFIXES, "text")  # a mistake here costs nothing yet
    settings = command_settings(args)  # the reader names a missing or unreadable file
    config = settings.config
    backend = select_backend(config.backend, settings.registry)
    speech = Speech(
        settings.registry.transcriber(config.transcriber),
        config.transcriber_options,
        backend.device,
        backend.check_dtype(config.dtype),
    )
    bar = TerminalBar("transcribing", "s")  # seconds of audio, on a terminal
    try:
        heard = speech.hear(args.video, 1, args.start, args.end, required=True, progress=bar)
    finally:
        bar.close()
    assert heard.transcript is not None  # required: no audio raised
    write_document(args, heard.transcript.render(fmt))
    return 0
