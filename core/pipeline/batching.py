"""One way to group prepared requests for generation, for every entry point.

`Pipeline.batch`, `Pipeline.answer_each` (which `vidtt run`, the server's batcher and the Ray
generation actors call) and the gathering of segment notes all group with `batches`: equal
batch keys together (their generation options and prompt settings), at most `size` a group,
similar prompt lengths side by side unless arrival order is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from vidtt.pipeline.prepared import Prepared


def batches(prepared: Sequence[Prepared], size: int, by_length: bool = True) -> list[list[int]]:
    """Positions in `prepared` grouped to be generated together: equal batch keys (groups in
    the order their first request came), at most `size` a group, sorted within a key by frame
    count, the frames shown and prompt length (`by_length`) or kept in arrival order."""
    groups: dict[str, list[int]] = {}
    for n, p in enumerate(prepared):
        groups.setdefault(p.batch_key(), []).append(n)
    out = []
    for group in groups.values():
        if by_length:
            group.sort(
                key=lambda n: (prepared[n].frames(), prepared[n].media(), prepared[n].size())
            )
        out += [group[i : i + size] for i in range(0, len(group), size)]
    return out
