"""Reciprocal rank fusion (Cormack, Clarke and Büttcher, SIGIR 2009): each ranked list gives a
result `1 / (K + rank)`, summed over the lists it is in. It needs no score scales (BM25 and
cosine distance are not comparable), no tuning, and a result near the top of both lists beats
one at the top of either."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

K = 60  # the paper's constant: how much the top ranks outweigh the rest


def fuse(
    lists: Sequence[Sequence[Hashable]], k: int = K
) -> list[tuple[Hashable, float, list[int | None]]]:
    """The keys of every list, best first: (key, fused score, its 1-based rank in each list or
    None). Ties keep the order of first appearance (the first list's order first)."""
    scores: dict[Hashable, float] = {}
    ranks: dict[Hashable, list[int | None]] = {}
    for which, ranked in enumerate(lists):
        for rank, key in enumerate(ranked, start=1):
            if key in ranks and ranks[key][which] is not None:
                continue  # a key twice in one list counts once, at its best rank
            ranks.setdefault(key, [None] * len(lists))[which] = rank
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    order = sorted(scores, key=lambda key: -scores[key])  # stable: first appearance breaks ties
    return [(key, scores[key], ranks[key]) for key in order]
