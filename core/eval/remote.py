"""What the eval's HTTP clients (`vidtt.eval.server`, `vidtt.eval.judge`) share: how long to
wait before asking a busy server (429, 503) again."""

from __future__ import annotations

import email.utils
import math
import time


def retry_after(value: str | None, attempt: int, cap: float) -> float:
    """Seconds to wait before retry `attempt` (0 first): the Retry-After header (seconds or
    an HTTP date) when given, else 1, 2, 4 ... seconds; never over `cap`."""
    wait = _seconds(value) if value else None
    if wait is None or math.isnan(wait):
        wait = float(2**attempt)
    return min(max(wait, 0.0), cap)


def _seconds(value: str) -> float | None:
    """A Retry-After header's seconds from now (None when it is neither a number nor a date)."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None
