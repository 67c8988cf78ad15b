"""`vidtt chat`: talk about videos over several turns, the frames sampled once."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import Any

from vidtt.cli.interrupt import Terminated
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
    """At a terminal Ctrl-C stops the answer and returns to the prompt, where a second Ctrl-C
    (or Ctrl-D, an empty line, `exit`) ends the chat; piped in, an empty line or the end of
    the input ends it, and Ctrl-C stops the command (exit status 130)."""
    pipe, clips = prepared(args, ask=False)
    interactive = sys.stdin.isatty()
    read = terminal_reader() if interactive else piped_reader()
    if interactive and all(isinstance(c, Clip) for c in clips):
        times = "; ".join(", ".join(f"{t:.1f}" for t in c.timestamps) for c in clips)
        print(
            f"vidtt: {len(clips)} video(s) sampled (frames at {times} s). Ask away; Ctrl-C "
            "stops an answer; an empty line, Ctrl-D or Ctrl-C at the prompt ends.",
            file=sys.stderr,
        )
    messages: list[dict[str, Any]] = []
    while line := read():
        turn = user_turn(line, clips if not messages else [])
        text = answer(pipe, [*messages, turn], args.timestamps, stoppable=interactive)
        if text is None:  # stopped: the turn is forgotten, and Ctrl-C again ends the chat
            read.interrupted = True
            continue
        messages += [turn, {"role": "assistant", "content": text}]
    return 0


def answer(pipe: Any, messages: list[dict[str, Any]], timestamps: bool, stoppable: bool) -> Any:
    """Stream the answer to `messages`; its text, or (`stoppable`, on Ctrl-C) None once its
    generation stopped."""
    stream = None
    try:
        stream = pipe.chat(messages, stream=True, timestamps=timestamps)
        print_stream(stream)
    except Terminated:
        raise
    except KeyboardInterrupt:
        if not stoppable:
            raise
        if stream is not None:
            stream.close()  # generation ends at the next token; the engine is free again
        print(flush=True)
        print("vidtt: answer stopped (Ctrl-C again ends the chat)", file=sys.stderr, flush=True)
        return None
    return stream.answer.text


def user_turn(text: str, clips: list[Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "video", "video": c} for c in clips]
    return {"role": "user", "content": [*content, {"type": "text", "text": text}]}


class Reader:
    """Reads the next line, stripped; "" when the chat should end."""

    def __init__(self, read: Any) -> None:
        self.read = read
        self.interrupted = False  # Ctrl-C was pressed last (a second one at the prompt ends)

    def __call__(self) -> str:
        line = self.read(self)
        self.interrupted = False
        return "" if line is None or line in ("exit", "quit") else line


def piped_reader() -> Reader:
    """Lines from a pipe; the chat ends at an empty line, `exit`, `quit` or the end."""

    def read(_: Reader) -> str | None:
        line = sys.stdin.readline()
        return line.strip() if line else None

    return Reader(read)


def terminal_reader() -> Reader:
    """Lines typed at a terminal with readline editing and a history kept across sessions;
    Ctrl-C at the prompt forgets the line, and ends the chat when Ctrl-C was also the last
    key before (stopping an answer, or at the prompt)."""
    history = history_file()
    try:
        import readline
    except ImportError:  # e.g. Windows without pyreadline
        readline = None  # type: ignore[assignment]
    if readline is not None:
        readline.set_history_length(1000)
        with contextlib.suppress(OSError):
            readline.read_history_file(history)

    def read(reader: Reader) -> str | None:
        while True:
            try:
                line = input("you> ")
                break
            except EOFError:
                print(file=sys.stderr)
                return None
            except Terminated:
                raise
            except KeyboardInterrupt:
                print(file=sys.stderr)
                if reader.interrupted:
                    return None
                reader.interrupted = True
                print("vidtt: (Ctrl-C again, or Ctrl-D, ends the chat)", file=sys.stderr)
        if readline is not None and line.strip():
            try:
                history.parent.mkdir(parents=True, exist_ok=True)
                readline.write_history_file(history)
            except OSError:
                pass
        return line.strip()

    return Reader(read)


def history_file() -> Path:
    from vidtt.cli.demo import cache_dir

    return cache_dir() / "chat_history"
