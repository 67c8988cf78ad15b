"""Answers asked for by several threads at once, generated together.

`vidtt run` prepares requests in worker threads; a long video's segment notes are generated
there, a batch at a time. `Gather` lets the notes of several videos share one `generate`:
the first caller waits `wait` seconds for others, then generates every waiting batch (grouped
by batch key, `most` requests at a time) and hands each caller its own answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vidtt.pipeline.batching import batches

WAIT = 0.02  # seconds the first caller waits for others


@dataclass
class _Ticket:
    prepared: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    answers: list[Any] = field(default_factory=list)
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.answers = [None] * len(self.prepared)


class Gather:
    """`answer(prepared) -> answers`, called from several threads, generated together."""

    def __init__(self, answer: Callable[[list[Any]], list[Any]], most: int = 32) -> None:
        self.answer, self.most = answer, most
        self._lock = threading.Lock()
        self._waiting: list[_Ticket] = []
        self._leading = False

    def __call__(self, prepared: list[Any]) -> list[Any]:
        ticket = _Ticket(list(prepared))
        with self._lock:
            self._waiting.append(ticket)
            lead = not self._leading
            self._leading = self._leading or lead
        if lead:
            time.sleep(WAIT)
            with self._lock:
                taken, self._waiting, self._leading = self._waiting, [], False
            self._run(taken)
        ticket.done.wait()
        if ticket.error is not None:
            raise ticket.error
        return ticket.answers

    def _run(self, tickets: list[_Ticket]) -> None:
        """Generate the tickets' requests grouped as every batch is (`batches`: one batch key,
        `most` at once); a group that fails fails each ticket with a request in it."""
        flat = [(t, k) for t in tickets for k in range(len(t.prepared))]
        try:
            for group in batches([t.prepared[k] for t, k in flat], self.most, by_length=False):
                chosen = [flat[n] for n in group]
                try:
                    answers = self.answer([t.prepared[k] for t, k in chosen])
                except BaseException as exc:  # every caller of the batch gets the failure
                    for ticket, _ in chosen:
                        ticket.error = exc
                    continue
                for (ticket, k), answer in zip(chosen, answers):
                    ticket.answers[k] = answer
        finally:
            for ticket in tickets:
                ticket.done.set()
