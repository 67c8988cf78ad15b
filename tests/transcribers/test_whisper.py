"""The built-in `whisper` transcriber on tiny random Whispers built offline.

Random weights say nothing sensible, so these tests check what does not depend on the words:
the windows and their offsets, the merge rule of overlapping windows, batching, memory that
does not grow with the length of the audio, language detection and forcing, timestamp
parsing, dtype and device, loading once, and one-line errors.
"""

from __future__ import annotations

import json
import shutil
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import torch

import vidtt.transcribers.whisper as whisper
from vidtt import registry
from vidtt.plugin_api import ModelLoadError, NoAudioError, OptionsError, TranscriberOptions
from vidtt.testing.speech import make_tiny_whisper
from vidtt.testing.videos import make_audio, make_video
from vidtt.transcribers.whisper import (
    Piece,
    WhisperOptions,
    WhisperTranscriber,
    parse_timestamps,
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_whisper(tmp_path_factory.mktemp("whisper") / "tiny")


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 s of audio: windows of 30 s with 5 s overlap start at 0, 25, 50 and 75."""
    return make_audio(tmp_path_factory.mktemp("audio") / "talk.wav", [(10, 1, 440)], seconds=100)


@pytest.fixture(scope="module")
def transcriber() -> WhisperTranscriber:
    return WhisperTranscriber()


class Recorder:
    """Wraps a loaded model's `generate`: the batch size and keywords of each call."""

    def __init__(self, loaded: Any, replace: list[int] | None = None) -> None:
        self.loaded, self.calls, self.replace = loaded, [], replace
        self.real = loaded.model.generate

    def __call__(self, features: torch.Tensor, **keywords: Any) -> torch.Tensor:
        self.calls.append({"batch": features.shape[0], **keywords})
        if self.replace is not None:
            return torch.tensor([self.replace] * features.shape[0])
        return self.real(features, **keywords)

    def __enter__(self) -> Recorder:
        self.loaded.model.generate = self
        return self

    def __exit__(self, *exc: object) -> None:
        del self.loaded.model.generate


def record_windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """Record (start, end) of every window the transcriber reads."""
    seen: list[tuple[float, float]] = []
    real = whisper.audio_windows

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        for window in real(*args, **kwargs):
            seen.append((window.start, window.end))
            yield window

    monkeypatch.setattr(whisper, "audio_windows", wrapped)
    return seen


def tokens(loaded: Any, *names: str) -> list[int]:
    tok = loaded.processor.tokenizer
    return [tok.convert_tokens_to_ids(n) for n in names]


# -- timestamp tokens ---------------------------------------------------------------------


EOT, BEGIN = 100, 110  # text below 100, specials 100..109, timestamps from 110 (0.02 s each)


def stamp(seconds: float) -> int:
    return BEGIN + round(seconds / 0.02)


def parse(ids: list[int]) -> list[Piece]:
    return parse_timestamps(ids, eot=EOT, timestamp_begin=BEGIN)


def test_parse_timestamps_pairs_and_consecutive_stamps() -> None:
    prompt = [101, 102, 105]  # start of transcript, a language, the task
    ids = [*prompt, stamp(0), 1, 2, stamp(1.5), stamp(1.5), 3, stamp(4.0), EOT, EOT, 7]
    assert parse(ids) == [Piece(0.0, 1.5, [1, 2]), Piece(1.5, 4.0, [3])]


def test_parse_timestamps_open_tail_and_leading_text() -> None:
    # text before any timestamp starts at the window's start; an unclosed one runs to its end
    assert parse([101, 5, 6, stamp(2.0), stamp(3.0), 7, 8]) == [
        Piece(None, 2.0, [5, 6]),
        Piece(3.0, None, [7, 8]),
    ]


def test_parse_timestamps_none_at_all_and_specials_skipped() -> None:
    assert parse([101, 102, 109, 4, 103, 5]) == [Piece(None, None, [4, 5])]
    assert parse([101, stamp(0), stamp(2)]) == []  # no text: nothing
    assert parse([]) == []


# -- windows, offsets, the merge rule -----------------------------------------------------


def test_windows_batches_and_progress(
    tiny: Path, audio: Path, transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_windows(monkeypatch)
    loaded = transcriber.load(str(tiny))
    done: list[tuple[float, float | None]] = []
    options = transcriber.options(model=str(tiny), batch_size=3, max_new_tokens=8)
    with Recorder(loaded) as recorder:
        result = transcriber.transcribe(audio, options, progress=lambda d, t: done.append((d, t)))
    assert seen == [(0.0, 30.0), (25.0, 55.0), (50.0, 80.0), (75.0, 100.0)]
    assert [c["batch"] for c in recorder.calls] == [3, 1]
    assert all(c["max_new_tokens"] == 8 and c["return_timestamps"] for c in recorder.calls)
    assert done == [(80.0, 100.0), (100.0, 100.0)]
    assert result.transcriber == "whisper" and result.source.endswith("talk.wav")
    for segment in result.segments:  # each inside a window it was read from
        assert any(lo <= segment.start <= segment.end <= hi for lo, hi in seen), segment
        assert segment.text.strip()
    middles = [(s.start + s.end) / 2 for s in result.segments]
    assert middles == sorted(middles)


def test_segments_offset_by_window_and_kept_once(
    tiny: Path, audio: Path, transcriber: WhisperTranscriber
) -> None:
    """Every window says the same: "<|1.00|> cat <|2.00|><|26.00|> y <|27.00|>", offset by its
    start. Windows 0-30, 25-55, 50-80, 75-100 own 0-27.5, 27.5-52.5, 52.5-77.5 and 77.5-:
    window 0 keeps 1-2 and 26-27; window 1 says 26-27 too (its "cat"), but window 0 owns that
    midpoint, so it is kept once; it keeps 51-52; window 3's 100-102 lies past the audio."""
    loaded = transcriber.load(str(tiny))
    encode = loaded.processor.tokenizer.encode
    out = [
        *tokens(loaded, "<|startoftranscript|>", "<|en|>", "<|transcribe|>"),
        *tokens(loaded, "<|1.00|>"),
        *encode(" cat", add_special_tokens=False),
        *tokens(loaded, "<|2.00|>", "<|26.00|>"),
        *encode(" dog", add_special_tokens=False),
        *tokens(loaded, "<|27.00|>", "<|endoftext|>"),
    ]
    options = transcriber.options(model=str(tiny), language="en")
    with Recorder(loaded, replace=out):
        result = transcriber.transcribe(audio, options)
    assert [(s.start, s.end) for s in result.segments] == [(1, 2), (26, 27), (51, 52), (76, 77)]
    assert [s.text for s in result.segments] == ["cat", "dog", "dog", "dog"]
    assert result.language == "en"
    with Recorder(loaded, replace=out):  # no overlap: every window keeps all it says
        result = transcriber.transcribe(audio, transcriber.options(model=str(tiny), overlap=0))
    assert [(s.start, s.end) for s in result.segments] == [
        (1, 2), (26, 27), (31, 32), (56, 57), (61, 62), (86, 87), (91, 92)
    ]  # fmt: skip


def test_window_without_timestamps_spans_the_window(
    tiny: Path, audio: Path, transcriber: WhisperTranscriber
) -> None:
    loaded = transcriber.load(str(tiny))
    text = loaded.processor.tokenizer.encode(" cat", add_special_tokens=False)
    out = [*tokens(loaded, "<|startoftranscript|>", "<|en|>", "<|transcribe|>"), *text]
    blank = [*tokens(loaded, "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|0.00|>")]
    with Recorder(loaded, replace=out):
        result = transcriber.transcribe(audio, transcriber.options(model=str(tiny), overlap=0))
    assert [(s.start, s.end) for s in result.segments] == [(0, 30), (30, 60), (60, 90), (90, 100)]
    with Recorder(loaded, replace=blank):  # nothing but whitespace or stamps: no segment
        assert transcriber.transcribe(audio, transcriber.options(model=str(tiny))).segments == []


def test_start_and_end_bound_the_segments(
    tiny: Path, audio: Path, transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_windows(monkeypatch)
    options = transcriber.options(model=str(tiny), start=12.5, end=47, max_new_tokens=16)
    result = transcriber.transcribe(audio, options)
    assert seen[0][0] == 12.5 and seen[-1][1] <= 47
    assert result.segments
    assert all(12.5 <= s.start <= s.end <= 47 for s in result.segments)


def test_audio_that_starts_late_stays_on_the_video_clock(
    tiny: Path, tmp_path: Path, transcriber: WhisperTranscriber, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = record_windows(monkeypatch)
    late = make_audio(tmp_path / "late.mp4", [(12, 1, 440)], seconds=20, start=10, video=40)
    result = transcriber.transcribe(late, transcriber.options(model=str(tiny), max_new_tokens=8))
    assert seen and seen[0][0] >= 9.9 and seen[-1][1] <= 30.1
    assert result.segments and all(9.9 <= s.start <= s.end <= 30.1 for s in result.segments)


def test_memory_does_not_grow_with_duration(tiny: Path, tmp_path: Path) -> None:
    """Peak traced memory (numpy: the audio, the features) for a 10-minute track is that of
    a 1-minute one (both hold one batch of windows and the next window), and within a small
    factor of a 30-second one (a single window)."""
    transcriber = WhisperTranscriber()
    options = transcriber.options(model=str(tiny), batch_size=2, max_new_tokens=1)
    transcriber.load(str(tiny))

    def peak(seconds: float) -> int:
        path = make_audio(tmp_path / f"{seconds:g}.wav", [(1, 1, 300)], seconds=seconds)
        tracemalloc.start()
        try:
            transcriber.transcribe(path, options)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    single, minute, ten = peak(30), peak(60), peak(600)
    assert ten < 1.25 * minute, (minute, ten)
    assert ten < 4 * single, (single, ten)


# -- languages ------------------------------------------------------------------------------


def test_forced_language_is_used(tiny: Path, audio: Path, transcriber: WhisperTranscriber) -> None:
    loaded = transcriber.load(str(tiny))

    def no_detection(**kwargs: Any) -> Any:
        raise AssertionError("a given language is not detected")

    loaded.model.detect_language = no_detection
    try:
        options = transcriber.options(model=str(tiny), language="French", max_new_tokens=4)
        with Recorder(loaded) as recorder:
            result = transcriber.transcribe(audio, options)
    finally:
        del loaded.model.detect_language
    assert result.language == "fr"
    assert {c["language"] for c in recorder.calls} == {"fr"}
    assert {c["task"] for c in recorder.calls} == {"transcribe"}


def test_language_detected_once_from_the_first_window(tmp_path: Path, audio: Path) -> None:
    model = make_tiny_whisper(tmp_path / "german", favour="de")
    transcriber = WhisperTranscriber()
    loaded = transcriber.load(str(model))
    detected: list[int] = []
    real = loaded.model.detect_language

    def counted(**kwargs: Any) -> Any:
        detected.append(kwargs["input_features"].shape[0])
        return real(**kwargs)

    loaded.model.detect_language = counted
    options = transcriber.options(model=str(model), batch_size=2, max_new_tokens=2)
    with Recorder(loaded) as recorder:
        result = transcriber.transcribe(audio, options)
    assert result.language == "de"
    assert detected == [1]  # one window, once per file
    assert [c["language"] for c in recorder.calls] == ["de", "de"]


def test_bad_language_names_close_ones(tiny: Path, audio: Path) -> None:
    transcriber = WhisperTranscriber()
    with pytest.raises(OptionsError) as error:
        transcriber.transcribe(audio, transcriber.options(model=str(tiny), language="germna"))
    message = str(error.value)
    assert "\n" not in message and "'germna'" in message and "german" in message
    with pytest.raises(OptionsError, match="it knows 3: de, en, fr"):
        transcriber.transcribe(audio, transcriber.options(model=str(tiny), language="xx"))


def test_english_only_checkpoint(tiny: Path, tmp_path: Path, audio: Path) -> None:
    english = tmp_path / "tiny.en"
    shutil.copytree(tiny, english)
    config = json.loads((english / "generation_config.json").read_text())
    config.update(is_multilingual=False)
    del config["lang_to_id"], config["task_to_id"]  # as in openai/whisper-*.en
    (english / "generation_config.json").write_text(json.dumps(config))
    transcriber = WhisperTranscriber()
    loaded = transcriber.load(str(english))
    options = transcriber.options(model=str(english), max_new_tokens=2)
    with Recorder(loaded) as recorder:
        assert transcriber.transcribe(audio, options).language == "en"
    assert all("language" not in c and "task" not in c for c in recorder.calls)
    with pytest.raises(OptionsError, match="English-only"):
        transcriber.transcribe(audio, transcriber.options(model=str(english), task="translate"))


# -- loading, dtype, device -----------------------------------------------------------------


def test_loaded_once_across_calls_and_threads(
    tiny: Path, audio: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transcriber = WhisperTranscriber()
    loads: list[tuple[Any, ...]] = []
    real = whisper._load

    def counted(*args: Any) -> Any:
        loads.append(args)
        return real(*args)

    monkeypatch.setattr(whisper, "_load", counted)
    threads = [threading.Thread(target=transcriber.load, args=(str(tiny),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    options = transcriber.options(model=str(tiny), max_new_tokens=2, end=20)
    transcriber.transcribe(audio, options)
    transcriber.transcribe(audio, options)
    assert loads == [(str(tiny), None, "cpu", "float32")]
    transcriber.load(str(tiny), dtype="bfloat16")  # another dtype: another copy
    assert len(loads) == 2


def test_dtype_and_device(tiny: Path, audio: Path) -> None:
    transcriber = WhisperTranscriber()
    options = transcriber.options(
        model=str(tiny), dtype="bfloat16", device="cpu", max_new_tokens=4, end=30
    )
    result = transcriber.transcribe(audio, options)
    loaded = transcriber.load(str(tiny), None, "cpu", "bfloat16")
    assert loaded.model.dtype == torch.bfloat16 and loaded.model.device.type == "cpu"
    assert all(0 <= s.start <= s.end <= 30 for s in result.segments)
    with pytest.raises(ModelLoadError) as error:
        transcriber.load(str(tiny), device="nosuchdevice")
    assert "\n" not in str(error.value) and "nosuchdevice" in str(error.value)


def test_bad_model_is_one_line(tmp_path: Path, audio: Path) -> None:
    transcriber = WhisperTranscriber()
    missing = str(tmp_path / "no-such-whisper")
    with pytest.raises(ModelLoadError) as error:
        transcriber.transcribe(audio, transcriber.options(model=missing))
    message = str(error.value)
    assert "\n" not in message and missing in message and "save_pretrained" in message
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError, match="'bert' model, not Whisper"):
        transcriber.load(str(other))


# -- options, registry, no audio ------------------------------------------------------------


def test_options_and_registry() -> None:
    transcriber = registry.transcriber("whisper")
    assert isinstance(transcriber, WhisperTranscriber)
    options = transcriber.options()
    assert isinstance(options, WhisperOptions)
    assert (options.model, options.window, options.overlap) == ("openai/whisper-small", 30, 5)
    assert (options.batch_size, options.task, options.num_beams) == (8, "transcribe", 1)
    for bad in ({"window": 31}, {"overlap": 16}, {"task": "summarise"}, {"batch_size": 0}):
        with pytest.raises(OptionsError, match="transcriber 'whisper'"):
            transcriber.options(**bad)
    # the pipeline's plain options are taken too (device and dtype filled in from its backend)
    plain = TranscriberOptions(device="cpu", dtype="float32", language="en")
    assert transcriber._own(plain).language == "en"


def test_video_without_audio(tiny: Path, tmp_path: Path) -> None:
    video = make_video(tmp_path / "silent.mp4")
    transcriber = WhisperTranscriber()
    with pytest.raises(NoAudioError):
        transcriber.transcribe(video, transcriber.options(model=str(tiny)))
