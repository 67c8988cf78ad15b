"""Times as people read them: `m:ss`, or `h:mm:ss` from an hour on."""

from __future__ import annotations


def clock(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss` from an hour on), rounded down to the second."""
    whole = int(max(seconds, 0.0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
