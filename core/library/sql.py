"""The where-clauses a library pushes down to Lance, every value written as a literal this
module escapes: text in single quotes (a quote doubled), numbers checked to be finite numbers,
a path glob turned into `LIKE ... ESCAPE` with its wildcards escaped. Nothing a user types is
ever pasted into SQL unescaped."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from vidtt.errors import LibraryError

ESCAPE = "\\"


def text(value: str) -> str:
    """`value` as an SQL string literal."""
    if "\x00" in value:
        raise LibraryError("a search filter holds a NUL character: remove it")
    return "'" + value.replace("'", "''") + "'"


def number(value: float) -> str:
    """`value` as an SQL number literal (a finite int or float, nothing else)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LibraryError(f"a search filter needs a number, not {value!r}")
    if not math.isfinite(value):
        raise LibraryError(f"a search filter needs a finite number, not {value!r}")
    return repr(int(value)) if isinstance(value, int) else repr(float(value))


def one_of(column: str, values: Iterable[str]) -> str:
    """`column IN ('a', 'b')` (never empty: the caller checks)."""
    return f"{column} IN ({', '.join(text(v) for v in values)})"


def glob_to_like(glob: str) -> str:
    """A shell-style glob as a LIKE pattern: `*` any characters (`/` included), `?` one; `%`,
    `_` and the escape character match themselves. `[...]` classes are not special."""
    out = []
    for char in glob:
        if char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        elif char in ("%", "_", ESCAPE):
            out.append(ESCAPE + char)
        else:
            out.append(char)
    return "".join(out)


def path_matches(column: str, glob: str) -> str:
    """`column` matches the glob (the whole path: write `*name*` for a part of it)."""
    return f"{column} LIKE {text(glob_to_like(glob))} ESCAPE {text(ESCAPE)}"


def epoch_ns(moment: datetime | float | int | str) -> int:
    """A moment in time as nanoseconds since the epoch: a datetime, an ISO 8601 date or time
    (`2026-12-01`, `2026-12-01T08:00`; naive: local time) or seconds since the epoch."""
    if isinstance(moment, str):
        written = moment
        try:
            moment = datetime.fromisoformat(written.strip())
        except ValueError:
            raise LibraryError(
                f"{written[:40]!r} is not a date: write 2026-12-01 or 2026-12-01T08:00"
            ) from None
    if isinstance(moment, datetime):
        aware = moment if moment.tzinfo else moment.astimezone()
        return int(aware.astimezone(timezone.utc).timestamp() * 1e9)
    if (
        isinstance(moment, bool)
        or not isinstance(moment, (int, float))
        or not math.isfinite(moment)
    ):
        raise LibraryError(f"a date must be a datetime or seconds since the epoch, not {moment!r}")
    return int(moment * 1e9)


def moment_filter(
    *,
    kinds: Sequence[str] | None = None,
    path_glob: str | None = None,
    min_duration: float | None = None,
    max_duration: float | None = None,
    since: datetime | float | str | None = None,
    until: datetime | float | str | None = None,
) -> str | None:
    """The where-clause over the moments table for a search's filters (None: no filter)."""
    parts = []
    if kinds:
        parts.append(one_of("kind", kinds))
    if path_glob:
        parts.append(path_matches("path", path_glob))
    if min_duration is not None:
        parts.append(f"duration >= {number(min_duration)}")
    if max_duration is not None:
        parts.append(f"duration <= {number(max_duration)}")
    if since is not None:
        parts.append(f"mtime_ns >= {number(epoch_ns(since))}")
    if until is not None:
        parts.append(f"mtime_ns < {number(epoch_ns(until))}")
    return " AND ".join(f"({part})" for part in parts) or None
