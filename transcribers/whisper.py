"""The built-in `whisper` transcriber: transformers' Whisper, on the pipeline's device and dtype.

Any Whisper checkpoint works (a hub id or a folder made with `save_pretrained`); the default is
openai/whisper-small (244M parameters, 0.97 GB of float32 weights, 99 languages). The audio is
read in windows (`audio_windows`: 30 s, Whisper's input, by default) that neighbouring windows
overlap by `overlap` seconds, and `batch_size` windows go to each `generate` call, so memory
stays that of one batch whatever the length of the file.

Each window is decoded once, with timestamps (`force_unique_generate_call`: no re-seek inside a
window, the overlap covers the cut), and its timestamp tokens are read into segments offset by
the window's start onto the video's clock. Where windows overlap, a segment belongs to the
window that owns its midpoint: the boundary between two neighbours is the middle of their
shared stretch, so each window decides only for the part of the audio it sees with at least
`overlap / 2` seconds of context on either side, and a segment is never kept twice.

The language is Whisper's language token for the first window (once per file; every window is
then decoded in it), or the one given, checked against the checkpoint's languages.
"""

from __future__ import annotations

import difflib
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from pydantic import Field, model_validator

from vidtt.plugin_api import (
    SAMPLE_RATE,
    ModelLoadError,
    OptionsError,
    Progress,
    Segment,
    Transcriber,
    TranscriberOptions,
    Transcript,
    VideoSource,
    audio_windows,
    check_torchvision,
    hookimpl,
    hub_options,
    probe_audio,
)

DEFAULT_MODEL = "openai/whisper-small"
# How a Whisper folder on disk is named, wherever a hub model cannot be had.
LOCAL = "(--transcriber-option model=FOLDER; in a config, transcriber_options: {model: FOLDER})"
TIME_PRECISION = 0.02  # seconds per timestamp token
WINDOW = 30.0  # seconds: Whisper's input


class WhisperOptions(TranscriberOptions):
    """Options of the `whisper` transcriber (and every transcriber's start/end/language/...)."""

    model: str = Field(DEFAULT_MODEL, min_length=1, description="a Whisper hub id or folder")
    revision: str | None = Field(None, description="the hub revision of `model`")
    task: Literal["transcribe", "translate"] = Field(
        "transcribe", description="transcribe, or translate into English"
    )
    window: float = Field(WINDOW, ge=1, le=WINDOW, description="seconds per window (30 at most)")
    overlap: float = Field(5.0, ge=0, description="seconds neighbouring windows share")
    batch_size: int = Field(8, ge=1, le=256, description="windows per generate call")
    max_new_tokens: int | None = Field(
        None, ge=1, le=440, description="tokens per window; None: the model's limit"
    )
    num_beams: int = Field(1, ge=1, le=16, description="beam search width (1: greedy)")

    @model_validator(mode="after")
    def _check_overlap(self) -> WhisperOptions:
        check_overlap(self.window, self.overlap)
        return self


def check_overlap(window: float, overlap: float) -> None:
    """Neighbouring windows may share at most half a window (each decides its middle)."""
    if overlap > window / 2:
        raise ValueError(f"overlap ({overlap:g} s) must be at most half the window ({window:g} s)")


class Window(Protocol):
    """What `audio_windows` yields: 16 kHz mono samples, the clock time of the first, and the
    damaged packets left out while it was read."""

    @property
    def start(self) -> float: ...

    @property
    def samples(self) -> Any: ...

    @property
    def skipped(self) -> int: ...

    @property
    def end(self) -> float: ...


@dataclass
class Loaded:
    """A Whisper checkpoint on a device, with what decoding needs to know about it."""

    label: str
    model: Any
    processor: Any
    dtype: Any
    languages: dict[str, int]  # code -> language token id; {} for English-only checkpoints
    eot: int
    timestamp_begin: int

    @property
    def multilingual(self) -> bool:
        return bool(self.languages)

    def code_of(self, token: int) -> str | None:
        for code, tid in self.languages.items():
            if tid == token:
                return code
        return None


@dataclass
class Piece:
    """A segment as decoded from one window: seconds from the window's start (None: the
    window's start or end) and its text tokens."""

    start: float | None
    end: float | None
    tokens: list[int]


def parse_timestamps(
    tokens: Sequence[int], *, eot: int, timestamp_begin: int, precision: float = TIME_PRECISION
) -> list[Piece]:
    """Split one window's generated tokens into timed pieces.

    Whisper's layout: text tokens below `eot`, special tokens (start of transcript, language,
    task, ...) from `eot` up to `timestamp_begin`, timestamp tokens from there (one per
    `precision` seconds). Segments read `<|t0|> text <|t1|>`; a timestamp straight after
    another starts the next segment; text with no closing timestamp runs to the window's end;
    text before any timestamp starts at the window's start. Reading stops at the first `eot`.
    Pieces with no text tokens are not returned.
    """
    pieces: list[Piece] = []
    start: float | None = None
    text: list[int] = []
    opened = False  # a timestamp has opened the current segment
    for token in tokens:
        token = int(token)
        if token == eot:
            break
        if token >= timestamp_begin:
            time = (token - timestamp_begin) * precision
            if text:
                pieces.append(Piece(start if opened else None, time, text))
                text, opened = [], False
            else:  # an opening timestamp (or one right after a closing one)
                start, opened = time, True
        elif token > eot:
            continue  # a special token: the prompt's, or one a random model emits
        else:
            text.append(token)
    if text:
        pieces.append(Piece(start if opened else None, None, text))
    return pieces


def pairs(windows: Iterable[Window]) -> Iterator[tuple[Window, Window | None]]:
    """Each window with the one after it (None for the last): one window of look-ahead."""
    it = iter(windows)
    current = next(it, None)
    while current is not None:
        following = next(it, None)
        yield current, following
        current = following


def batches(
    items: Iterable[tuple[Window, Window | None]], size: int
) -> Iterator[list[tuple[Window, Window | None]]]:
    batch: list[tuple[Window, Window | None]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class WhisperTranscriber(Transcriber):
    name = "whisper"
    description = "transformers' Whisper (any checkpoint; default openai/whisper-small)"
    options_model = WhisperOptions

    def __init__(self) -> None:
        self._models: dict[tuple[str, str | None, str, str], Loaded] = {}
        self._loading: dict[tuple[str, str | None, str, str], threading.Lock] = {}
        self._lock = threading.Lock()
        self.loads = 0  # checkpoints loaded by this instance (each once per key)

    # -- loading ------------------------------------------------------------------------------

    def load(
        self, model: str, revision: str | None = None, device: str = "cpu", dtype: str = "float32"
    ) -> Loaded:
        """The checkpoint on `device` in `dtype`, loaded on first use and kept."""
        key = (model, revision, device, dtype)
        with self._lock:
            known = self._models.get(key)
            if known is not None:
                return known
            lock = self._loading.setdefault(key, threading.Lock())
        with lock:  # one load per key, even when several threads ask at once
            with self._lock:
                known = self._models.get(key)
            if known is not None:
                return known
            loaded = _load(model, revision, device, dtype)
            with self._lock:
                self._models[key] = loaded
                self.loads += 1
            return loaded

    def unload(self) -> None:
        """Forget every loaded checkpoint (their memory is freed once nothing else holds them)."""
        with self._lock:
            self._models.clear()
            self._loading.clear()

    # -- transcribing -------------------------------------------------------------------------

    def transcribe(
        self, source: VideoSource, options: TranscriberOptions, progress: Progress | None = None
    ) -> Transcript:
        opts = self._own(options)
        source = VideoSource.of(source)
        info = probe_audio(source)  # NoAudioError when there is none
        total = audio_span(info, opts.start, opts.end)
        windows = audio_windows(
            source, start=opts.start, end=opts.end, window=opts.window, overlap=opts.overlap
        )
        transcript = self.transcribe_windows(windows, opts, progress=progress, total=total)
        transcript.source = source.label
        return transcript

    def transcribe_windows(
        self,
        windows: Iterable[Window],
        options: TranscriberOptions,
        progress: Progress | None = None,
        total: float | None = None,
    ) -> Transcript:
        """Transcribe audio already cut into windows (objects with `start` in seconds on the
        video's clock and 16 kHz mono float32 `samples`), in the order they come."""
        opts = self._own(options)
        loaded = self.load(opts.model, opts.revision, opts.device or "cpu", opts.dtype or "float32")
        language = resolve_language(opts.language, loaded)
        if opts.task == "translate" and not loaded.multilingual:
            raise OptionsError(
                f"whisper: {loaded.label} is an English-only checkpoint and cannot translate; "
                "use a multilingual one (e.g. openai/whisper-small) or task=transcribe"
            )
        segments: list[Segment] = []
        skipped = 0  # damaged packets the audio reader left out
        begin: float | None = None
        previous_end: float | None = None  # the end of the window before the current one
        for batch in batches(pairs(windows), opts.batch_size):
            if begin is None:
                begin = batch[0][0].start if opts.start is None else opts.start
            features, mask = _features(loaded, [w.samples for w, _ in batch])
            if language is None and loaded.multilingual:
                language = detect_language(loaded, features[:1])
            sequences = _generate(loaded, features, mask, opts, language)
            for (window, following), tokens in zip(batch, sequences.tolist()):
                low = -math.inf if previous_end is None else (window.start + previous_end) / 2
                high = math.inf if following is None else (following.start + window.end) / 2
                for piece in parse_timestamps(
                    tokens, eot=loaded.eot, timestamp_begin=loaded.timestamp_begin
                ):
                    segment = _place(loaded, piece, window, opts)
                    if segment is not None and low <= (segment.start + segment.end) / 2 < high:
                        segments.append(segment)
                previous_end = window.end
                skipped += int(getattr(window, "skipped", 0) or 0)
            if progress is not None:
                done = batch[-1][0].end - (begin or 0.0)
                progress(done if total is None else min(done, total), total)
            del features, mask, sequences
        if not loaded.multilingual:
            language = "en"
        warnings = [f"{skipped} damaged audio packets were skipped"] if skipped else []
        return Transcript(
            segments=segments, language=language, transcriber=self.name, warnings=warnings
        )

    def _own(self, options: TranscriberOptions) -> WhisperOptions:
        if isinstance(options, WhisperOptions):
            return options
        return self.options(**options.model_dump(exclude_unset=True))  # type: ignore[return-value]


def audio_span(info: Any, start: float | None, end: float | None) -> float | None:
    """Seconds of audio within [start, end), from the probe (None when its length is unknown)."""
    duration = getattr(info, "duration", None)
    if duration is None:
        return None
    first = float(getattr(info, "start", 0.0) or 0.0)
    last = first + float(duration)
    if end is not None:
        last = min(last, end)
    if start is not None:
        first = max(first, start)
    return max(last - first, 0.0)


def _place(loaded: Loaded, piece: Piece, window: Window, opts: WhisperOptions) -> Segment | None:
    """A decoded piece as a segment on the video's clock, inside its window and the range."""
    text = loaded.processor.tokenizer.decode(piece.tokens, skip_special_tokens=True).strip()
    if not text:
        return None
    low, high = window.start, window.end
    if opts.start is not None:
        low = max(low, opts.start)
    if opts.end is not None:
        high = min(high, opts.end)
    high = max(high, low)
    start = window.start + (piece.start or 0.0)
    end = window.end if piece.end is None else window.start + piece.end
    if start >= high or end <= low:
        return None  # in the window's padding (past its audio), or outside the range
    start = max(start, low)
    end = min(max(end, start), high)
    return Segment(start=round(start, 3), end=round(end, 3), text=text)


def _features(loaded: Loaded, samples: list[Any]) -> tuple[Any, Any]:
    """Log-mel features of a batch of windows (each padded to Whisper's 30 s) on the model's
    device and dtype, with their attention mask."""
    out = loaded.processor.feature_extractor(
        samples, sampling_rate=SAMPLE_RATE, return_tensors="pt", return_attention_mask=True
    )
    device = loaded.model.device
    return out.input_features.to(device, loaded.dtype), out.attention_mask.to(device)


def detect_language(loaded: Loaded, features: Any) -> str | None:
    """Whisper's language token for these features (the first window), as a code."""
    import torch

    with torch.inference_mode():
        token = loaded.model.detect_language(input_features=features)
    return loaded.code_of(int(token.reshape(-1)[0]))


def _generate(
    loaded: Loaded, features: Any, mask: Any, opts: WhisperOptions, language: str | None
) -> Any:
    import torch

    keywords: dict[str, Any] = {
        "attention_mask": mask,
        "return_timestamps": True,
        "force_unique_generate_call": True,  # one pass per window: the overlap covers cuts
        "num_beams": opts.num_beams,
    }
    if opts.max_new_tokens is not None:
        keywords["max_new_tokens"] = opts.max_new_tokens
    if loaded.multilingual:
        keywords["task"] = opts.task
        if language is not None:
            keywords["language"] = language
    _QUIET.inside.on = True
    try:
        with torch.inference_mode():
            out = loaded.model.generate(features, **keywords)
    finally:
        _QUIET.inside.on = False
    return out if isinstance(out, torch.Tensor) else out["sequences"]


class _QuietGenerate(logging.Filter):
    """Drops two warnings that Whisper's own `generate` trips on every call (the `max_length` it
    sets itself beside `max_new_tokens`; its suppress tokens beside the generation config), only
    on the thread inside `_generate`: other callers of `generate` still see them."""

    NOISE = ("seem to have been set", "together with generation-related")

    def __init__(self) -> None:
        super().__init__()
        self.inside = threading.local()

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(self.inside, "on", False):
            return True
        return not any(noise in record.getMessage() for noise in self.NOISE)


_QUIET = _QuietGenerate()
logging.getLogger("transformers.generation.utils").addFilter(_QUIET)


def resolve_language(given: str | None, loaded: Loaded) -> str | None:
    """The code of a given language (a code such as `de`, a name such as `german`, or the
    token `<|de|>`) that the checkpoint knows; `OptionsError` naming close ones otherwise."""
    if given is None:
        return None
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    key = given.strip().lower().removeprefix("<|").removesuffix("|>")
    key = TO_LANGUAGE_CODE.get(key, key)
    known = loaded.languages or {"en": -1}
    if key in known:
        return key
    names = {name: code for name, code in TO_LANGUAGE_CODE.items() if code in known}
    close = difflib.get_close_matches(key, [*known, *names], n=3, cutoff=0.6)
    hint = " or ".join(f"{c} ({names[c]})" if c in names else c for c in close)
    listed = ", ".join(sorted(known)[:12]) + (", ..." if len(known) > 12 else "")
    raise OptionsError(
        f"whisper: language {given!r} is not one that {loaded.label} knows"
        + (f"; did you mean {hint}?" if hint else "")
        + f" (it knows {len(known)}: {listed})"
    )


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _load(model: str, revision: str | None, device: str, dtype: str) -> Loaded:
    import torch

    check_torchvision()  # transformers imports it for the model: a mismatch is one line
    from transformers import AutoConfig, WhisperForConditionalGeneration, WhisperProcessor

    what = f"cannot load whisper model {model!r}"
    todo = (
        "pass a Whisper checkpoint: a hub id such as openai/whisper-small, or a folder made "
        f"with save_pretrained {LOCAL}"
    )
    try:
        hub = hub_options(model, revision, False)
    except ModelLoadError as exc:  # not cached, and the hub out of reach (or offline mode)
        raise ModelLoadError(f"whisper: {exc} {LOCAL}") from None
    try:
        config = AutoConfig.from_pretrained(model, **hub)
    except Exception as exc:
        raise ModelLoadError(f"{what}: {_first_line(exc)}; {todo}") from None
    if getattr(config, "model_type", None) != "whisper":
        raise ModelLoadError(f"{what}: it is a {config.model_type!r} model, not Whisper; {todo}")
    torch_dtype = getattr(torch, dtype)
    try:
        processor = WhisperProcessor.from_pretrained(model, **hub)
        network = WhisperForConditionalGeneration.from_pretrained(model, dtype=torch_dtype, **hub)
    except Exception as exc:
        raise ModelLoadError(f"{what}: {_first_line(exc)}; {todo}") from None
    try:
        network = network.to(device).eval()  # type: ignore[arg-type]
    except Exception as exc:
        raise ModelLoadError(
            f"{what} onto device {device!r}: {_first_line(exc)}; choose another device or backend"
        ) from None
    gen = network.generation_config
    no_timestamps = getattr(gen, "no_timestamps_token_id", None)
    if no_timestamps is None:
        raise ModelLoadError(
            f"{what}: its generation config has no no_timestamps_token_id, so it cannot give "
            "timestamps; use a checkpoint saved with a Whisper generation config"
        )
    multilingual = bool(getattr(gen, "is_multilingual", False))
    lang_to_id = getattr(gen, "lang_to_id", None) or {}
    languages = (
        {token.strip("<|>"): int(tid) for token, tid in lang_to_id.items()} if multilingual else {}
    )
    eot = int(gen.eos_token_id if not isinstance(gen.eos_token_id, list) else gen.eos_token_id[0])
    return Loaded(
        label=model,
        model=network,
        processor=processor,
        dtype=torch_dtype,
        languages=languages,
        eot=eot,
        timestamp_begin=int(no_timestamps) + 1,
    )


@hookimpl
def register_transcribers(register: Any) -> None:
    register(WhisperTranscriber())
