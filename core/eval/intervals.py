"""Confidence intervals by percentile bootstrap over questions (docs/eval.md).

Questions are resampled with replacement; the interval is the (1 - level) / 2 and
(1 + level) / 2 percentiles of the resampled means. The same seed gives the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vidtt.errors import OptionsError

_CHUNK = 200  # resamples drawn at once, to bound memory on large sets


def _check(n: int, level: float, resamples: int) -> None:
    if n == 0:
        raise OptionsError("no values to bootstrap: score at least one question first")
    if not 0 < level < 1:
        raise OptionsError(f"confidence level {level} is not between 0 and 1: use e.g. 0.95")
    if resamples < 1:
        raise OptionsError(f"resamples={resamples}: use at least 1 (1000 is usual)")


def _resampled_means(values: Any, resamples: int, seed: int) -> Any:
    """``resamples`` means of ``values`` each resampled with replacement (numpy array)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = len(values)
    means = []
    for start in range(0, resamples, _CHUNK):
        count = min(_CHUNK, resamples - start)
        means.append(values[rng.integers(0, n, size=(count, n))].mean(axis=1))
    return np.concatenate(means)


def _percentiles(means: Any, level: float) -> tuple[float, float]:
    import numpy as np

    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """(low, high) of the mean of ``values`` (e.g. 1.0 right, 0.0 wrong per question)."""
    import numpy as np

    _check(len(values), level, resamples)
    data = np.asarray(values, dtype=float)
    return _percentiles(_resampled_means(data, resamples, seed), level)


def paired_difference_ci(
    a: Sequence[float],
    b: Sequence[float],
    level: float = 0.95,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """(low, high) of mean(a) - mean(b), the same questions resampled for both settings.

    ``a[i]`` and ``b[i]`` must score the same question; an interval that excludes 0 says the
    two settings differ at this level.
    """
    import numpy as np

    if len(a) != len(b):
        raise OptionsError(
            f"paired scores differ in length ({len(a)} and {len(b)}): score the same questions"
        )
    _check(len(a), level, resamples)
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return _percentiles(_resampled_means(diff, resamples, seed), level)
