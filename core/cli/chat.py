"""`vidtt chat`: talk about videos over several turns, the frames sampled once."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import print_stream
from vidtt.cli.settings import prepared
from vidtt.types import Clip


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    chat = subcommand(sub, "chat", "talk about videos, several turns, frames sampled once", common)
    chat.add_argument("videos", nargs="+", metavar="VIDEO", help="video file path or http(s) URL")
    add_model_options(chat)
    add_request_options(chat)
    chat.set_defaults(func=cmd_chat)
    return chat


def cmd_chat(args: argparse.Namespace) -> int:
    pipe, clips = prepared(args, ask=False)
    interactive = sys.stdin.isatty()
    read = terminal_reader() if interactive else piped_reader()
    if interactive and all(isinstance(c, Clip) for c in clips):
        times = "; ".join(", ".join(f"{t:.1f}" for t in c.timestamps) for c in clips)
        print(
            f"vidtt: {len(clips)} video(s) sampled (frames at {times} s). "
            "Ask away; an empty line or Ctrl-D ends.",
            file=sys.stderr,
        )
    messages: list[dict[str, Any]] = []
    while (line := read()) is not None:
        if not line:
            if interactive:
                return 0
            continue
        messages.append(user_turn(line, clips if not messages else []))
        stream = pipe.chat(messages, stream=True, timestamps=args.timestamps)
        print_stream(stream)
        messages.append({"role": "assistant", "content": stream.answer.text})
    return 0


def user_turn(text: str, clips: list[Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "video", "video": c} for c in clips]
    return {"role": "user", "content": [*content, {"type": "text", "text": text}]}


def piped_reader() -> Any:
    """Lines from a pipe, stripped; None at the end or on `exit`/`quit`."""

    def read() -> str | None:
        line = sys.stdin.readline()
        return None if not line or line.strip() in ("exit", "quit") else line.strip()

    return read


def terminal_reader() -> Any:
    """Lines typed at a terminal with readline editing and a history kept across sessions."""
    history = history_file()
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def read() -> str | None:
        try:
            line = input("you> ")
        except EOFError:
            print(file=sys.stderr)
            return None
        if readline is not None and line.strip():
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError:
                pass
        return None if line.strip() in ("exit", "quit") else line.strip()

    return read


def history_file() -> Path:
    from vidtt.cli.demo import cache_dir

    return cache_dir() / "chat_history"
