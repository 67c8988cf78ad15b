"""The `vidtt` command line. User mistakes print one line and exit 2; `--debug` shows tracebacks.

Each command is one module that adds its own parser (`add_parser`) next to its handler.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from vidtt.cli.interrupt import Terminated, exit_interrupted, terminate_as_interrupt
from vidtt.errors import VidttError
from vidtt.urls import redact
from vidtt.version import __version__


def _print_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    print(f"vidtt: warning: {message}", file=sys.stderr)


def quiet_transformers() -> None:
    """No progress bars or advice from transformers on the command line (errors still show)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


def build_parser() -> argparse.ArgumentParser:
    """`vidtt` and every command's parser, each added by its command's module (imported here,
    inside `main`, where Ctrl-C is met), in `vidtt --help` order; a misspelled command or flag
    gets its closest spelling and the usage of the command it was given to."""
    from vidtt.cli import (
        ask,
        backends,
        cache,
        chat,
        config,
        demo,
        eval,
        index,
        plugins,
        run,
        sample,
        search,
        serve,
        summarize,
        transcribe,
        watch,
    )
    from vidtt.cli.options import Parser

    parser = Parser(
        prog="vidtt",
        description="Ask questions about videos with video language models.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"vidtt {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (
        ask,
        chat,
        sample,
        transcribe,
        summarize,
        watch,
        run,
        eval,
        index,
        search,
        serve,
        config,
        cache,
        demo,
        plugins,
        backends,
    ):
        command.add_parser(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (Ctrl-C: 130, SIGTERM: 143, closed output
    pipe: 141)."""
    try:
        with terminate_as_interrupt():
            code = _main(argv)
            sys.stdout.flush()
    except KeyboardInterrupt as stop:
        return exit_interrupted(terminated=isinstance(stop, Terminated))
    except BrokenPipeError:
        return quiet_broken_pipe()
    return code


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    warnings.showwarning = _print_warning
    quiet_transformers()
    try:
        return int(args.func(args))
    except (KeyboardInterrupt, BrokenPipeError):
        raise
    except (VidttError, OSError) as exc:
        if args.debug:
            raise
        print(f"vidtt: error: {redact(str(exc))}", file=sys.stderr)
        return 2


def quiet_broken_pipe() -> int:
    """The reader of our output went away (`vidtt plugins | head`): stop without a word."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the flush at exit cannot fail again
    except (OSError, ValueError):
        pass
    return 141  # what a shell reports for a process ended by SIGPIPE
