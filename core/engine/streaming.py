"""`AnswerStream`: an answer's text as it is generated, on transformers' `TextStreamer`.

Generation runs in a thread that starts when the stream is first iterated. Leaving the loop
early (`break`, an exception, `close()`) stops generation at the next token and frees the
engine; a stream can be read once.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from vidtt.engine.generate import cut_at_stop, held_back
from vidtt.errors import OptionsError
from vidtt.types import Answer

Start = Callable[[Any, threading.Event], list[Answer]]
_DONE = object()


def piece_streamer(processor: Any, emit: Callable[[str], None], stop: list[str] | None) -> Any:
    """A `TextStreamer` that hands new text to `emit` token by token (never half a character),
    holds back what may begin a stop string, stops emitting at one, and notes when the first
    new token came (`first`)."""
    from transformers import TextStreamer

    class PieceStreamer(TextStreamer):  # type: ignore[misc]
        """Decodes only the last few tokens per step (the ones before give the spacing)."""

        def __init__(self) -> None:
            super().__init__(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
            self.started = time.perf_counter()
            self.first: float | None = None
            self.text = ""  # everything finalized so far
            self.sent = 0  # how much of it was emitted
            self.stopped = False
            self.context = 0  # token_cache[context:read] was decoded already

        def put(self, value: Any) -> None:
            if self.next_tokens_are_prompt:
                self.next_tokens_are_prompt = False
                return
            if self.first is None:
                self.first = time.perf_counter()
            self.token_cache.extend(value.reshape(-1).tolist())
            done = self.decode(self.token_cache[self.context : self.print_len])
            text = self.decode(self.token_cache[self.context :])
            if text.endswith("\ufffd") or len(text) <= len(done):
                return  # half a character, or nothing to show yet
            self.on_finalized_text(text[len(done) :])
            self.context, self.print_len = self.print_len, len(self.token_cache)

        def decode(self, ids: list[int]) -> str:
            return str(self.tokenizer.decode(ids, **self.decode_kwargs))

        def end(self) -> None:
            text = self.decode(self.token_cache[self.context :])
            done = self.decode(self.token_cache[self.context : self.print_len])
            self.token_cache, self.print_len, self.context = [], 0, 0
            self.next_tokens_are_prompt = True
            self.on_finalized_text(text[len(done) :], stream_end=True)

        def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
            if self.stopped:
                return
            self.text += text
            shown, self.stopped = cut_at_stop(self.text, stop)
            if not (self.stopped or stream_end):
                shown = shown[: len(shown) - held_back(shown, stop)]
            if len(shown) > self.sent:
                emit(shown[self.sent :])
                self.sent = len(shown)

    return PieceStreamer()


class AnswerStream:
    """Text pieces as they are generated; `answer` holds the whole Answer once read."""

    def __init__(self, start: Start, processor: Any, stop: list[str] | None = None) -> None:
        self._start = start
        self._pieces: queue.Queue[Any] = queue.Queue()
        self._streamer = piece_streamer(processor, self._pieces.put, stop)
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._reader: weakref.ref[Iterator[str]] | None = None
        self._error: BaseException | None = None
        self.answer: Answer | None = None

    def _work(self) -> None:
        try:
            self.answer = self._start(self._streamer, self._cancel)[0]
        except BaseException as exc:  # handed to the reading thread
            self._error = exc
        finally:
            self._pieces.put(_DONE)

    def __iter__(self) -> Iterator[str]:
        """The pieces; iterating again while reading goes on where it was, after the end
        it raises."""
        reader = self._reader() if self._reader is not None else None
        if reader is not None:
            return reader
        if self._thread is not None:
            raise OptionsError("this answer stream was already read: ask again for a new one")
        self._thread = threading.Thread(target=self._work, name="vidtt-stream", daemon=True)
        self._thread.start()
        reader = self._read()
        self._reader = weakref.ref(reader)  # a reader dropped by `break` is closed at once
        return reader

    def _read(self) -> Iterator[str]:
        try:
            while (piece := self._pieces.get()) is not _DONE:
                yield piece
        finally:
            self.close()  # at once when the reader left early, else a no-op
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        sent = self._streamer.text[: self._streamer.sent]
        text = self.answer.text if self.answer is not None else ""
        if text.startswith(sent) and len(text) > len(sent):
            yield text[len(sent) :]  # a tail the eos cut held back

    def close(self) -> None:
        """Stop generating (at the next token) and wait until the engine is free."""
        self._cancel.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> AnswerStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
