"""The optional `faster-whisper` transcriber, on a tiny random Whisper converted offline with
ctranslate2. Without faster-whisper installed only the registration and the install hint
are checked."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vidtt import registry
from vidtt.plugin_api import ModelLoadError, OptionsError
from vidtt.testing.speech import make_tiny_whisper
from vidtt.testing.videos import make_audio
from vidtt.transcribers.faster_whisper import FasterWhisperOptions, FasterWhisperTranscriber


def test_registered_and_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    transcriber = registry.transcriber("faster-whisper")
    assert isinstance(transcriber, FasterWhisperTranscriber)
    assert isinstance(transcriber.options(), FasterWhisperOptions)
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # as if not installed
    audio = make_audio(tmp_path / "a.wav", seconds=1)
    with pytest.raises(ModelLoadError) as error:
        FasterWhisperTranscriber().transcribe(audio, transcriber.options(model="tiny"))
    assert "\n" not in str(error.value) and "pip install 'vidtt[speech-fast]'" in str(error.value)


def test_options() -> None:
    transcriber = FasterWhisperTranscriber()
    assert transcriber.options().model == "small"
    with pytest.raises(OptionsError, match="overlap"):
        transcriber.options(window=60, overlap=31)
    with pytest.raises(ModelLoadError, match="cpu or cuda"):
        transcriber.load(transcriber.options(device="mps"))


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("faster_whisper")
    from ctranslate2.converters import TransformersConverter

    root = tmp_path_factory.mktemp("fw")
    # CTranslate2 4.8 takes this tiny Whisper for an English-only one (as it does a random
    # one of whisper-tiny's full vocabulary): language detection is not reachable here
    model = make_tiny_whisper(root / "tiny")
    out = root / "tiny-ct2"
    TransformersConverter(str(model), copy_files=["tokenizer.json"]).convert(str(out))
    return out


@pytest.fixture(scope="module")
def audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_audio(tmp_path_factory.mktemp("audio") / "talk.wav", [(5, 1, 440)], seconds=100)


def test_transcribes_in_windows_on_the_video_clock(converted: Path, audio: Path) -> None:
    transcriber = FasterWhisperTranscriber()
    done: list[tuple[float, float | None]] = []
    options = transcriber.options(
        model=str(converted), window=40, overlap=4, max_new_tokens=8, start=3, end=95
    )
    result = transcriber.transcribe(audio, options, progress=lambda d, t: done.append((d, t)))
    assert result.transcriber == "faster-whisper" and result.language == "en"
    assert all(3 <= s.start <= s.end <= 95 and s.text for s in result.segments)
    middles = [(s.start + s.end) / 2 for s in result.segments]
    assert middles == sorted(middles)
    assert done[-1] == (92, 92)
    # loaded once; a given language is checked against the model's
    again = transcriber.transcribe(
        audio, transcriber.options(model=str(converted), language="English", end=30)
    )
    assert again.language == "en" and transcriber.loads == 1
    with pytest.raises(OptionsError, match="'fr' is not one that"):
        transcriber.transcribe(audio, transcriber.options(model=str(converted), language="fr"))


def test_bad_model_is_one_line(tmp_path: Path, audio: Path) -> None:
    pytest.importorskip("faster_whisper")
    transcriber = FasterWhisperTranscriber()
    missing = str(tmp_path / "nowhere" / "model")
    with pytest.raises(ModelLoadError) as error:
        transcriber.transcribe(audio, transcriber.options(model=missing))
    assert "\n" not in str(error.value) and missing in str(error.value)
