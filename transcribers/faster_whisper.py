"""The optional `faster-whisper` transcriber: Whisper on CTranslate2 (`pip install
'vidtt[speech-fast]'`).

It registers whether or not faster-whisper is installed; without it, using it fails with one
line that says how to install it. Models: a faster-whisper size name (`small`, `large-v3`,
`distil-large-v3`, ...), a hub id of a CTranslate2 conversion (`Systran/faster-whisper-small`)
or a folder made with ctranslate2's `TransformersConverter` (`ct2-transformers-converter`).

The audio comes from `audio_windows` in long windows (300 s by default), so memory is bounded
by one window whatever the length of the file; inside a window faster-whisper runs its own
sequential 30 s decoding (each step seeking to the end of the last complete segment).
Neighbouring windows overlap, and a segment belongs to the window that owns its midpoint, as
in the `whisper` transcriber. The language is detected on the first window's first 30 s, then
used for every window, or the one given is used.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any, Literal

from pydantic import Field, model_validator

from vidtt.plugin_api import (
    ModelLoadError,
    OptionsError,
    Progress,
    Segment,
    Transcriber,
    TranscriberOptions,
    Transcript,
    VideoSource,
    audio_windows,
    hookimpl,
    hub_options,
    probe_audio,
)
from vidtt.transcribers.whisper import audio_span, check_overlap, pairs

DEFAULT_MODEL = "small"  # Systran/faster-whisper-small: openai/whisper-small in CTranslate2
# How a model folder on disk is named, wherever a hub model cannot be had.
LOCAL = "(--transcriber-option model=FOLDER; in a config, transcriber_options: {model: FOLDER})"
INSTALL = (
    "the faster-whisper transcriber needs the faster-whisper package: "
    "pip install 'vidtt[speech-fast]' (or pip install faster-whisper)"
)


class FasterWhisperOptions(TranscriberOptions):
    """Options of the `faster-whisper` transcriber."""

    model: str = Field(
        DEFAULT_MODEL, min_length=1, description="a size name, CTranslate2 hub id or folder"
    )
    revision: str | None = Field(None, description="the hub revision of `model`")
    task: Literal["transcribe", "translate"] = "transcribe"
    compute_type: str | None = Field(
        None,
        description="CTranslate2 compute type (int8, int8_float16, float16, float32, ...); "
        "None: int8 on the CPU, the dtype on CUDA",
    )
    window: float = Field(300.0, ge=30, le=3600, description="seconds of audio per window")
    overlap: float = Field(5.0, ge=0, description="seconds neighbouring windows share")
    beam_size: int = Field(1, ge=1, le=16, description="beam search width (1: greedy)")
    max_new_tokens: int | None = Field(None, ge=1, le=440, description="tokens per 30 s")
    cpu_threads: int = Field(0, ge=0, description="CPU threads; 0: CTranslate2's default")
    condition_on_previous_text: bool = Field(
        True, description="prompt each 30 s with the text before it (within a window)"
    )

    @model_validator(mode="after")
    def _check_overlap(self) -> FasterWhisperOptions:
        check_overlap(self.window, self.overlap)
        return self


class FasterWhisperTranscriber(Transcriber):
    name = "faster-whisper"
    description = "Whisper on CTranslate2 (needs vidtt[speech-fast]; default model small)"
    options_model = FasterWhisperOptions

    def __init__(self) -> None:
        self._models: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()
        self.loads = 0

    def load(self, opts: FasterWhisperOptions) -> Any:
        """The `faster_whisper.WhisperModel` for these options, loaded once and kept."""
        device, index = _device(opts.device or "cpu")
        compute = opts.compute_type or ("int8" if device == "cpu" else opts.dtype or "float16")
        key = (opts.model, opts.revision, device, index, compute, opts.cpu_threads)
        with self._lock:  # loads are rare: one at a time
            known = self._models.get(key)
            if known is None:
                known = _load(opts, device, index, compute)
                self._models[key] = known
                self.loads += 1
            return known

    def transcribe(
        self, source: VideoSource, options: TranscriberOptions, progress: Progress | None = None
    ) -> Transcript:
        opts = self._own(options)
        model = self.load(opts)
        language = _language(opts.language, model, opts.model)
        source = VideoSource.of(source)
        total = audio_span(probe_audio(source), opts.start, opts.end)
        windows = audio_windows(
            source, start=opts.start, end=opts.end, window=opts.window, overlap=opts.overlap
        )
        segments: list[Segment] = []
        previous_end: float | None = None
        begin: float | None = None
        skipped = 0
        for window, following in pairs(windows):
            begin = window.start if begin is None else begin
            low = -math.inf if previous_end is None else (window.start + previous_end) / 2
            high = math.inf if following is None else (following.start + window.end) / 2
            pieces, detected = model.transcribe(
                window.samples,
                language=language,
                task=opts.task,
                beam_size=opts.beam_size,
                vad_filter=False,
                condition_on_previous_text=opts.condition_on_previous_text,
                max_new_tokens=opts.max_new_tokens,
            )
            language = language or detected.language
            for piece in pieces:
                start = window.start + float(piece.start)
                end = min(window.start + float(piece.end), window.end)
                lo = window.start if opts.start is None else max(window.start, opts.start)
                hi = window.end if opts.end is None else min(window.end, opts.end)
                text = piece.text.strip()
                if text and start < hi and end > lo and low <= (start + end) / 2 < high:
                    start, end = max(start, lo), max(min(end, hi), max(start, lo))
                    segments.append(Segment(start=round(start, 3), end=round(end, 3), text=text))
                if progress is not None:
                    done = min(end, window.end) - begin
                    progress(done if total is None else min(done, total), total)
            previous_end = window.end
            skipped += window.skipped
            if progress is not None:
                done = window.end - begin
                progress(done if total is None else min(done, total), total)
        warnings = [f"{skipped} damaged audio packets were skipped"] if skipped else []
        return Transcript(
            segments=segments, language=language, transcriber=self.name, warnings=warnings,
            source=source.label,
        )  # fmt: skip

    def _own(self, options: TranscriberOptions) -> FasterWhisperOptions:
        if isinstance(options, FasterWhisperOptions):
            return options
        return self.options(**options.model_dump(exclude_unset=True))  # type: ignore[return-value]


def _device(device: str) -> tuple[str, int]:
    kind, _, number = device.partition(":")
    if kind not in ("cpu", "cuda"):
        raise ModelLoadError(
            f"faster-whisper runs on cpu or cuda, not {device!r}; choose the cpu or cuda "
            "backend, or the whisper transcriber"
        )
    return kind, int(number or 0) if number.isdigit() else 0


def _load(opts: FasterWhisperOptions, device: str, index: int, compute: str) -> Any:
    try:
        import faster_whisper
        from faster_whisper.utils import _MODELS
    except ImportError:
        raise ModelLoadError(INSTALL) from None
    name = opts.model
    local = False
    if not os.path.isdir(name):  # a size name or a hub id: the quick hub check first
        try:
            hub = hub_options(_MODELS.get(name, name), opts.revision, False)
        except ModelLoadError as exc:  # not cached, and the hub out of reach (or offline)
            raise ModelLoadError(f"faster-whisper: {exc} {LOCAL}") from None
        local = bool(hub.get("local_files_only"))
    try:
        return faster_whisper.WhisperModel(
            name,
            device=device,
            device_index=index,
            compute_type=compute,
            cpu_threads=opts.cpu_threads,
            local_files_only=local,
            revision=opts.revision,
        )
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(
            f"cannot load faster-whisper model {name!r}: {first}; pass a size name (small, "
            "large-v3, ...), a CTranslate2 hub id or a folder made with ct2-transformers-converter "
            + LOCAL
        ) from None


def _language(given: str | None, model: Any, label: str) -> str | None:
    if given is None:
        return None
    from transformers.models.whisper.tokenization_whisper import TO_LANGUAGE_CODE

    key = given.strip().lower().removeprefix("<|").removesuffix("|>")
    key = TO_LANGUAGE_CODE.get(key, key)
    known = list(getattr(model, "supported_languages", None) or [])
    if key in known:
        return key
    import difflib

    names = {n: c for n, c in TO_LANGUAGE_CODE.items() if c in known}
    close = difflib.get_close_matches(key, [*known, *names], n=3, cutoff=0.6)
    hint = " or ".join(f"{c} ({names[c]})" if c in names else c for c in close)
    raise OptionsError(
        f"faster-whisper: language {given!r} is not one that {label} knows"
        + (f"; did you mean {hint}?" if hint else "")
    )


@hookimpl
def register_transcribers(register: Any) -> None:
    register(FasterWhisperTranscriber())
