"""`vidtt watch`: ask a question about a live source every few seconds, as it happens."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vidtt.cli.options import (
    WATCH_TICK,
    add_generation_options,
    add_model_options,
    add_prompt_options,
    add_window_sampling_options,
    subcommand,
)

SOURCE_HELP = (
    "rtsp://, rtsps://, http(s):// (an HLS playlist or a stream), udp://HOST:PORT (MPEG-TS "
    "sent here), /dev/videoN (a webcam), a file still being written, or a finished MP4 "
    "(played once at its own speed)"
)


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    watch = subcommand(sub, "watch", "ask about a live stream or camera as it happens", common)
    watch.add_argument("source", metavar="SOURCE", help=SOURCE_HELP)
    watch.add_argument("-q", "--question", required=True, help="what to ask at every tick")
    group = watch.add_argument_group("ticks and output")
    group.add_argument(
        "--every", type=float, dest=WATCH_TICK, metavar="S", help="ask every S seconds (default 5)"
    )
    group.add_argument(
        "--window", type=float, metavar="S", help="about the last S seconds (default 10)"
    )
    group.add_argument(
        "--when",
        metavar="PATTERN",
        help="print only answers matching this regular expression (RE2 syntax; --json: every "
        "answer, with matched)",
    )
    group.add_argument(
        "--yes-no",
        action="store_true",
        help="ask for yes or no, and print only the answers that say yes (alerts; --json: "
        "every answer, with matched)",
    )
    group.add_argument("--max-events", type=int, metavar="N", help="stop after N answers")
    group.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    group.add_argument(
        "--json",
        action="store_true",
        help="print every event as a JSON line (every answer, those --when or --yes-no do not "
        "match too: see matched)",
    )
    source = watch.add_argument_group("the source")
    source.add_argument("--transport", choices=("tcp", "udp"), help="RTSP transport (default tcp)")
    source.add_argument(
        "--buffer-fps", type=float, metavar="N", help="frames a second kept (default 4)"
    )
    source.add_argument(
        "--open-timeout", type=float, metavar="S", help="seconds to open it (default 10)"
    )
    source.add_argument(
        "--reconnect-seconds",
        type=float,
        metavar="S",
        help="how long a lost source is retried before the watch ends (default 30)",
    )
    source.add_argument(
        "--allow-private",
        action="store_true",
        help="allow hosts on private, loopback or link-local addresses (cameras on your LAN)",
    )
    add_model_options(watch)
    add_window_sampling_options(watch)
    add_prompt_options(watch)
    add_generation_options(watch)
    watch.set_defaults(func=cmd_watch)
    return watch


def cmd_watch(args: argparse.Namespace) -> int:
    from vidtt import limits
    from vidtt.cli.settings import build_pipeline, command_settings
    from vidtt.engine.loading import with_frame_rule
    from vidtt.errors import SourceError
    from vidtt.media.fetch import ALLOW_HINT
    from vidtt.pipeline.watch import Watch, open_reader, split_watch_fields

    settings = command_settings(args, None, args.question, ask=True)  # the flags in its watch
    options, _ = split_watch_fields({}, settings.config.watch)
    allow = {"block_private_addresses": False} if args.allow_private else {}
    try:
        with limits.use(limits.make(settings.config.limits, **allow)):
            reader = open_reader(args.source, options)  # before the model: costs nothing
    except SourceError as exc:
        raise SourceError(
            str(exc).replace(ALLOW_HINT, "to allow it pass --allow-private")
        ) from None
    try:
        settings, processor = with_frame_rule(settings)
        pipe = build_pipeline(settings, processor)
        watch = Watch(
            pipe,
            reader,
            args.question,
            options,
            every_answer=args.json,
            timestamps=args.timestamps or None,
        )
        if options.filters() and not args.json:
            print(f"vidtt: {_only(options)}", file=sys.stderr, flush=True)
        for event in watch:
            _print(event, args.json)
    finally:
        reader.stop()
    if reader.ended and reader.source.kind != "file":
        return 1  # the source was lost for good (its last event said why)
    return 0


def _only(options: Any) -> str:
    """What is printed of a filtered watch, said once on stderr (a quiet run is not silent)."""
    which = [f"match {options.when!r}"] if options.when else []
    which += ["say yes"] if options.yes_no else []
    return (
        f"printing only the answers that {' and '.join(which)} (--json prints every answer, "
        "with matched)"
    )


def _print(event: Any, as_json: bool) -> None:
    if as_json:
        print(event.model_dump_json(), flush=True)
    elif event.kind == "source":
        print(f"vidtt: {event.text()}", file=sys.stderr, flush=True)
    else:
        print(event.text(), flush=True)
