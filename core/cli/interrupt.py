"""Ctrl-C (and SIGTERM) on the command line: stop generation threads, join them, exit 130
(143) quietly, keeping the work already done.

A thread still inside `model.generate` (C++ code) when the interpreter shuts down makes the
process abort ("terminate called without an active exception", exit 134). So the CLI adds a
stopping criterion to its model's `generate` that watches one event; on Ctrl-C it sets the event,
which ends generation at the next token, and joins the threads before exiting.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

EXIT_CODE = 130
TERMINATED_CODE = 143  # what a shell reports for a process ended by SIGTERM
JOIN_SECONDS = 15.0

cancelled = threading.Event()
_generating: set[threading.Thread] = set()  # threads inside a cancellable `generate`
_generating_lock = threading.Lock()


def make_criterion() -> Any:
    """A transformers `StoppingCriteria` that stops every row once `cancelled` is set."""
    from vidtt.engine.generate import stop_when

    return stop_when(cancelled)


def make_cancellable(model: Any) -> Any:
    """Wrap `model.generate` (on this instance only) so that `cancel()` stops it."""
    original = model.generate
    if getattr(original, "_vidtt_cancellable", False):
        return model

    @functools.wraps(original)
    def generate(*args: Any, **kwargs: Any) -> Any:
        from transformers import StoppingCriteriaList

        criteria = StoppingCriteriaList(kwargs.pop("stopping_criteria", None) or [])
        criteria.append(make_criterion())
        thread = threading.current_thread()
        with _generating_lock:
            _generating.add(thread)
        try:
            return original(*args, stopping_criteria=criteria, **kwargs)
        finally:
            with _generating_lock:
                _generating.discard(thread)

    generate._vidtt_cancellable = True  # type: ignore[attr-defined]
    model.generate = generate
    return model


class Terminated(KeyboardInterrupt):
    """SIGTERM, met like Ctrl-C: generation stops at the next token, finished work is kept."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While inside (on the main thread), SIGTERM raises `Terminated` as SIGINT raises
    KeyboardInterrupt; the earlier handler is back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(*_: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def cancel(timeout: float = JOIN_SECONDS) -> bool:
    """Stop generation and wait for the threads that were generating to end; True when they
    all did within `timeout` seconds."""
    cancelled.set()
    with _generating_lock:
        threads = [t for t in _generating if t is not threading.current_thread()]
    ends = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def exit_interrupted(terminated: bool = False, say: Callable[[str], object] | None = None) -> int:
    """After Ctrl-C (or SIGTERM): say so (on stderr, or through `say`: a logger's method),
    stop generation, and return 130 (143) or leave at once if a thread cannot be stopped, or
    on a second signal."""
    code = TERMINATED_CODE if terminated else EXIT_CODE
    if threading.current_thread() is threading.main_thread():
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda *_: hard_exit(code))
    word = "terminated" if terminated else "interrupted"
    if say is not None:
        say(word)
    else:
        with contextlib.suppress(OSError):
            print(f"\nvidtt: {word}", file=sys.stderr, flush=True)
    if not cancel():
        hard_exit(code)
    return code


def hard_exit(code: int = EXIT_CODE) -> None:
    """Exit without running interpreter shutdown (which aborts under a live C++ thread)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
