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

WAIT = 0.02  # seconds the first caller waits for others


@dataclass
class _Ticket:
    prepared: list[Any]
    done: threading.Event = field(default_factory=threading.Event)
    answers: list[Any] = field(default_factory=list)
    error: BaseException | None = None


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
        """Generate the tickets' requests, those of one batch key together, `most` at once."""
        groups: dict[str, list[_Ticket]] = {}
        for ticket in tickets:
            key = "|".join(sorted({p.batch_key() for p in ticket.prepared}))
            groups.setdefault(key, []).append(ticket)
        for group in groups.values():
            while group:
                chosen: list[_Ticket] = []
                size = 0
                while group and (not chosen or size + len(group[0].prepared) <= self.most):
                    chosen.append(group.pop(0))
                    size += len(chosen[-1].prepared)
                self._generate(chosen)

    def _generate(self, tickets: list[_Ticket]) -> None:
        try:
            answers = self.answer([p for t in tickets for p in t.prepared])
        except BaseException as exc:  # every caller of the batch gets the failure
            for ticket in tickets:
                ticket.error = exc
                ticket.done.set()
            return
        start = 0
        for ticket in tickets:
            ticket.answers = answers[start : start + len(ticket.prepared)]
            start += len(ticket.prepared)
            ticket.done.set()
