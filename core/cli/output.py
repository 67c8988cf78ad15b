"""How commands print: an answer as it streams, and plain text tables."""

from __future__ import annotations

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
