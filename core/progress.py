"""One progress interface: work tells a `Progress` how far it is, as (done, total).

A `Progress` is any callable `progress(done, total)` (`total` None while unknown): a user's
own function (`Pipeline.prepare(..., progress=...)`, a transcriber's), the server's stream
progress (its chunks, and so the page), or `TerminalBar`, tqdm on stderr. Work that counts
steps wraps its progress in a `Counter`. Every command and strategy reports this way:
`vidtt run` (requests), segment notes (segments), `vidtt transcribe` (seconds of audio).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

Progress = Callable[[float, "float | None"], None]


class TerminalBar:
    """A `Progress` drawn by tqdm on stderr: live on a terminal; in a log file (not a terminal)
    a line every `log_every` seconds, or nothing without it; nothing at all unless `shown`."""

    def __init__(
        self, desc: str, unit: str, *, shown: bool = True, log_every: float | None = None
    ) -> None:
        from tqdm.auto import tqdm

        live = sys.stderr.isatty()
        self.bar = tqdm(
            total=None,
            unit=unit,
            desc=desc,
            disable=not shown or (not live and log_every is None),
            mininterval=0.1 if live else (log_every or 0.1),
            dynamic_ncols=live,
            file=sys.stderr,
        )

    def __call__(self, done: float, total: float | None) -> None:
        if total is not None and self.bar.total != round(total):
            self.bar.total = round(total)
        self.bar.update(round(done) - self.bar.n)

    def note(self, **fields: Any) -> None:
        """Shown after the count (say failed=2)."""
        self.bar.set_postfix(fields, refresh=False)

    def close(self) -> None:
        self.bar.close()


class Counter:
    """Steps counted up from `done` towards `total`, each change told to `report`."""

    def __init__(self, report: Progress, total: float | None, done: float = 0) -> None:
        self.report, self.total, self.done = report, total, done
        report(done, total)

    def update(self, count: float = 1) -> None:
        self.done += count
        self.report(self.done, self.total)

    def close(self) -> None:
        close = getattr(self.report, "close", None)
        if callable(close):
            close()
