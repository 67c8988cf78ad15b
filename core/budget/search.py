"""Searches over measured counts: each probe is a real (cached) processor call, so they
gallop from a guess and bisect rather than scan."""

from __future__ import annotations

from collections.abc import Callable

# Past the largest count the search found, this many more counts are measured too, so that a
# processor whose count is not monotonic in the frame count (rounding) is still planned right.
LOOKAHEAD = 2


def largest(fits: Callable[[int], bool], lo: int, hi: int, guess: int) -> int | None:
    """The largest n in lo..hi with fits(n), searching the real counts: gallop from a guess,
    bisect, then look a few counts further for processors whose count is not monotonic."""
    if lo > hi or not fits(lo):
        return None
    good, bad = lo, hi + 1
    while True:
        g = min(max(guess, good + 1), hi)
        if good < g < bad:
            if fits(g):
                good = g
            else:
                bad = g
        step = 1
        while bad == hi + 1 and good < hi:  # no failing count known yet: gallop up
            n = min(hi, good + step)
            if fits(n):
                good = n
                step *= 2
            else:
                bad = n
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        further = next((n for n in range(bad + 1, min(hi, bad + LOOKAHEAD) + 1) if fits(n)), None)
        if further is None:
            return good
        good, bad, guess = further, hi + 1, further + 1


def first(fits: Callable[[int], bool], hi: int, guess: int) -> int:
    """The smallest i in 0..hi with fits(i), where fits(hi) holds and fits only turns from
    False to True: measured from a guess outwards, then bisected."""
    g = min(max(guess, 0), hi)
    step = 1
    if g < hi and not fits(g):
        no, yes = g, hi
        while no + step < hi:  # gallop towards hi
            if fits(no + step):
                yes = no + step
                break
            no, step = no + step, step * 2
    else:
        no, yes = -1, g
        while yes > 0:  # gallop towards 0
            i = max(0, yes - step)
            if not fits(i):
                no = i
                break
            yes, step = i, step * 2
    while yes - no > 1:
        mid = (no + yes) // 2
        if fits(mid):
            yes = mid
        else:
            no = mid
    return yes
