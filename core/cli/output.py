"""How commands print: an answer as it streams, plain text tables, and a document written to
standard output or a file in the format its suffix names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def print_stream(stream: Any) -> None:
    for piece in stream:
        print(piece, end="", flush=True)
    print(flush=True)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain text table with aligned columns."""
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def add_document_options(
    parser: argparse.ArgumentParser, formats: tuple[str, ...], what: str, default: str
) -> None:
    """`-f/--format` (one of `formats`; `what` says what each is) and `--output FILE`."""
    parser.add_argument(
        "-f",
        "--format",
        choices=formats,
        help=f"{what} (default: from --output's suffix, else {default})",
    )
    parser.add_argument("--output", metavar="FILE", help="write to FILE (default: standard output)")


def document_format(args: argparse.Namespace, suffixes: dict[str, str], default: str) -> str:
    """--format, else the one --output's suffix names, else `default`."""
    if args.format:
        return str(args.format)
    return suffixes.get(Path(args.output).suffix.lower(), default) if args.output else default


def write_document(args: argparse.Namespace, text: str) -> None:
    """`text` to --output, or to standard output."""
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
