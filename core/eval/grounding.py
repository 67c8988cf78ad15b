"""Temporal grounding: IoU, mIoU and recall at IoU thresholds (spans are read from answers by
`vidtt.pipeline.spans.read_spans`).

Charades-STA's convention (docs/eval.md): per question the IoU of one predicted span (the first
the answer gives, unless ``pick="best"``) with the reference; mIoU is their mean and R@t the
share with IoU >= t. A question with no span read scores IoU 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from vidtt.errors import OptionsError

Span = tuple[float, float]


def _ordered(span: Span) -> Span | None:
    """``span`` with start <= end (a reversed span is read backwards), or None if not finite."""
    start, end = float(span[0]), float(span[1])
    if not (math.isfinite(start) and math.isfinite(end)):
        return None
    return (start, end) if start <= end else (end, start)


def iou(pred: Span | None, ref: Span) -> float:
    """Intersection over union of two time spans; 0.0 without a prediction or overlap.

    Reversed spans are read backwards; two zero-length spans score 1.0 only when equal.
    """
    a, b = (_ordered(pred) if pred is not None else None), _ordered(ref)
    if a is None or b is None:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    if union <= 0:
        return 1.0 if a == b else 0.0
    return inter / union


def _score(pred: Sequence[Span] | Span | None, ref: Span, pick: str) -> float:
    if pred is None or len(pred) == 0:
        return 0.0
    spans = [pred] if isinstance(pred[0], (int, float)) else list(pred)
    if pick == "first":
        return iou(spans[0], ref)  # type: ignore[arg-type]
    return max(iou(s, ref) for s in spans)  # type: ignore[arg-type]


def grounding_scores(
    pairs: Iterable[tuple[Sequence[Span] | Span | None, Span]],
    thresholds: Sequence[float] = (0.3, 0.5, 0.7),
    pick: str = "first",
) -> dict[str, float]:
    """``{"miou", "r@0.3", "r@0.5", "r@0.7", "count"}`` over (predicted spans, reference) pairs.

    A prediction is one span, a list of spans (``pick`` "first" or "best") or None. Scores are
    fractions in [0, 1]; all are 0.0 for no pairs.
    """
    if pick not in ("first", "best"):
        raise OptionsError(f"unknown span pick {pick!r}: use 'first' or 'best'")
    ious = [_score(pred, ref, pick) for pred, ref in pairs]
    n = len(ious)
    scores = {"miou": sum(ious) / n if n else 0.0}
    for t in thresholds:
        scores[f"r@{t:g}"] = sum(1 for v in ious if v >= t) / n if n else 0.0
    scores["count"] = n
    return scores
