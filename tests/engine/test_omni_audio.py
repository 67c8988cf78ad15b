"""Omni models hear a video's audio themselves: with a transcript asked, Qwen2.5-Omni and
Qwen3-Omni get each video's audio (16 kHz, over the sampled range) with its frames, and their
inputs equal transformers' own recipe for them: the template rendered with the video part
alone, then `processor(text=..., videos=..., audio=[...], use_audio_in_video=True)`
(`load_audio_from_video=True` with `audio_from_video_indices` since transformers 5.24), and
`generate(**inputs, use_audio_in_video=True)`."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tiny_models import make_family_processor

import vidtt
from vidtt import Clip, VideoInfo
from vidtt.errors import NoAudioError
from vidtt.media.audio import AudioWindow, read_audio
from vidtt.pipeline.messages import parse_messages
from vidtt.pipeline.speech import NoAudioWarning
from vidtt.testing.videos import make_audio

pytestmark = pytest.mark.slow
QUESTION = "What happens?"


@pytest.fixture(scope="module")
def omni_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2.5-Omni (its feature extractor at the audio tower's 128 mel bins)."""
    from tiny_models import make_qwen25_omni

    return make_qwen25_omni(tmp_path_factory.mktemp("qwen2.5-omni"))


@pytest.fixture(scope="module")
def omni(omni_dir: Path) -> Any:
    return vidtt.Pipeline(
        model=str(omni_dir),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 3},
    )


@pytest.fixture(scope="module")
def sound(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of video with a 440 Hz tone from 1.0 to 1.5 s on its audio track."""
    folder = tmp_path_factory.mktemp("sound")
    return make_audio(folder / "tone.mp4", tones=[(1.0, 0.5, 440.0)], seconds=4.0, video=4.0)


def audio_keywords(processor: Any, videos: int) -> dict[str, Any]:
    """How transformers' recipe says that audio[i] is video i's own audio."""
    from transformers import processing_utils

    mixin = getattr(processing_utils, "OmniModalProcessorMixin", None)  # transformers 5.24+
    if mixin is not None and isinstance(processor, mixin):
        return {"load_audio_from_video": True, "audio_from_video_indices": list(range(videos))}
    return {"use_audio_in_video": True}


def recipe(processor: Any, conversation: list[dict[str, Any]], clips: list[Clip]) -> Any:
    """transformers' recipe for omni models with audio in video, on the same frames (PIL
    images here; vidtt passes one array) and the same 16 kHz samples."""
    from transformers.video_utils import VideoMetadata

    text = processor.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    kwargs: dict[str, Any] = {"do_sample_frames": False}
    if "video_metadata" in processor.video_processor.valid_kwargs.__annotations__:
        kwargs["video_metadata"] = [
            VideoMetadata(
                total_num_frames=c.info.frame_count,
                fps=c.info.fps,
                width=c.width,
                height=c.height,
                duration=c.info.duration,
                video_backend="vidtt",
                frames_indices=list(c.indices),
            )
            for c in clips
        ]
    silence = np.zeros(1, dtype=np.float32)
    return processor(
        text=[text],
        videos=[[list(c.frames) for c in clips]],
        audio=[c.audio.samples if c.audio is not None else silence for c in clips],
        sampling_rate=16000,
        fps=clips[0].sampled_fps,  # the frames' own rate: audio and video interleave by time
        padding=True,
        return_tensors="pt",
        **kwargs,
        **audio_keywords(processor, len(clips)),
    )


def assert_same(mine: Any, theirs: Any) -> None:
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for key in theirs:
        a, b = mine[key], theirs[key]
        assert isinstance(b, torch.Tensor), key
        assert a.shape == b.shape and a.dtype == b.dtype, key
        assert torch.equal(a, b), f"{key} differs"


def user(*parts: Any) -> list[dict[str, Any]]:
    content = [
        {"type": "text", "text": p}
        if isinstance(p, str)
        else {"type": "video", "video": str(p) if isinstance(p, Path) else p}
        for p in parts
    ]
    return [{"role": "user", "content": content}]


def template_view(conversation: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the template sees it: a video part with nothing in it."""
    return [
        {
            "role": m["role"],
            "content": [{"type": "video"} if p["type"] == "video" else p for p in m["content"]],
        }
        for m in conversation
    ]


def make_clip(seed: int, seconds: float | None = 2.0) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (4, 48, 64, 3), dtype=np.uint8)
    indices = [6 + 12 * i for i in range(4)]
    clip = Clip(
        frames=frames,
        indices=indices,
        timestamps=[i / 24.0 for i in indices],
        info=VideoInfo(duration=2.0, fps=24.0, frame_count=48, width=64, height=48),
        sampler="uniform",
        source=f"video-{seed}",
    )
    if seconds is not None:
        samples = (rng.standard_normal(round(seconds * 16000)) * 0.1).astype(np.float32)
        clip.audio = AudioWindow(start=0.0, samples=samples)
    return clip


# -- the processor alone, both omni families -------------------------------------------------
@pytest.mark.parametrize("model_type", ["qwen2_5_omni", "qwen3_omni_moe"])
def test_omni_processors_take_audio(model_type: str) -> None:
    from transformers import AutoConfig

    from vidtt.plugins.choose import choose_formatter

    processor = make_family_processor(model_type)
    formatter = choose_formatter(
        vidtt.PipelineConfig().registry(), "auto", AutoConfig.for_model(model_type), processor
    )
    assert formatter.name == "native-video" and formatter.takes_audio(processor)


@pytest.mark.parametrize("model_type", ["qwen2_5_omni", "qwen3_omni_moe"])
@pytest.mark.parametrize("scenario", ["one_video", "two_videos"])
def test_audio_inputs_equal_the_transformers_recipe(model_type: str, scenario: str) -> None:
    from vidtt.formatters.native_video import NativeVideoFormatter

    processor = make_family_processor(model_type)
    clips = [make_clip(1)] if scenario == "one_video" else [make_clip(1), make_clip(2, 1.5)]
    conversation = user(*[p for c in clips for p in ("Look:", c)], QUESTION)
    mine = NativeVideoFormatter().build_inputs([parse_messages(conversation)], processor)
    assert mine.pop("use_audio_in_video") is True  # for generate, as the recipe passes it
    theirs = recipe(processor, template_view(conversation), clips)
    assert_same(mine, theirs)
    assert "input_features" in mine and "feature_attention_mask" in mine
    audio = processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    assert int((mine["input_ids"] == audio).sum()) > 0


def test_a_silent_video_beside_one_with_audio_is_heard_as_silence() -> None:
    """The model reads every video of a batch with its audio or none: a clip without audio
    gets silence over its frames (a batch of two requests, one of them silent)."""
    from vidtt.formatters.native_video import NativeVideoFormatter, audio_of

    processor = make_family_processor("qwen2_5_omni")
    loud, silent = make_clip(1), make_clip(2, seconds=None)
    rows = [user(loud, QUESTION), user(silent, QUESTION)]
    mine = NativeVideoFormatter().build_inputs([parse_messages(r) for r in rows], processor)
    quiet = audio_of(silent)
    assert not quiet.any() and len(quiet) == 2 * 16000  # frames at 0.25 to 1.75 s, 2 fps
    assert mine["use_audio_in_video"] is True
    assert mine["feature_attention_mask"].shape[0] == 2


def test_no_audio_no_audio_inputs() -> None:
    from vidtt.formatters.native_video import NativeVideoFormatter

    processor = make_family_processor("qwen2_5_omni")
    mine = NativeVideoFormatter().build_inputs(
        [parse_messages(user(make_clip(1, seconds=None), QUESTION))], processor
    )
    assert "input_features" not in mine and "use_audio_in_video" not in mine


# -- the tiny Qwen2.5-Omni through the pipeline -----------------------------------------------
def test_pipeline_inputs_equal_the_recipe_for_a_video_with_sound(omni: Any, sound: Path) -> None:
    request = {"messages": user(sound, QUESTION), "transcript": True, "timestamps": False}
    prepared = omni.prepare(request)
    clip = prepared.conversation[0].content[0].video
    assert clip.audio is not None and clip.transcript is None
    whole = read_audio(sound)
    assert np.array_equal(clip.audio.samples, whole.samples)  # 16 kHz, the sampled range
    mine = omni.formatter.build_inputs([prepared.conversation], omni.processor)
    assert mine.pop("use_audio_in_video") is True
    assert_same(mine, recipe(omni.processor, template_view(user(clip, QUESTION)), [clip]))


def test_an_omni_model_answers_hearing_the_audio(
    omni: Any, sound: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    generate = omni.model.generate

    def spy(**kwargs: Any) -> Any:
        seen.append(kwargs)
        return generate(**kwargs)

    monkeypatch.setattr(omni.model, "generate", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoAudioWarning)
        heard = omni.ask(sound, QUESTION, transcript=True)
    seeing = omni.ask(sound, QUESTION, timestamps=True)  # the same prompt less the audio
    assert heard.usage.generated_tokens == 3 and heard.videos[0].transcript is None
    assert seen[0]["use_audio_in_video"] is True
    assert {"input_features", "feature_attention_mask", "video_second_per_grid"} <= set(seen[0])
    assert "use_audio_in_video" not in seen[1] and "input_features" not in seen[1]
    assert heard.usage.prompt_tokens > seeing.usage.prompt_tokens
    audio = omni.processor.tokenizer.convert_tokens_to_ids("<|AUDIO|>")
    audio_tokens = int((seen[0]["input_ids"] == audio).sum())
    assert heard.usage.prompt_tokens - seeing.usage.prompt_tokens == audio_tokens + 2  # bos, eos


def test_the_answer_is_transformers_own_generation(omni: Any, sound: Path) -> None:
    request = {"messages": user(sound, QUESTION), "transcript": True, "timestamps": False}
    prepared = omni.prepare(request)
    clip = prepared.conversation[0].content[0].video
    answer = omni.answer([prepared])[0]
    theirs = recipe(omni.processor, template_view(user(clip, QUESTION)), [clip])
    with torch.inference_mode():
        out = omni.model.generate(
            **theirs, use_audio_in_video=True, max_new_tokens=3, do_sample=False
        )
    assert answer.token_ids == out[0, theirs["input_ids"].shape[1] :].tolist()


def test_a_video_without_audio_warns_and_still_answers(omni: Any, videos: dict) -> None:
    with pytest.warns(NoAudioWarning, match="has no transcript"):
        answer = omni.ask(videos["h264"], QUESTION, transcript=True)
    assert answer.usage.generated_tokens == 3
    assert any("no transcript" in w for w in answer.videos[0].warnings)
    with pytest.raises(NoAudioError, match="required"):
        omni.ask(videos["h264"], QUESTION, transcript="required")


def test_non_omni_models_do_not_take_audio(llava: Any) -> None:
    assert not llava.formatter.takes_audio(llava.processor)
    from vidtt.formatters.native_video import NativeVideoFormatter

    for model_type in ("qwen2_5_vl", "llava_next_video", "qwen3_vl"):
        assert not NativeVideoFormatter().takes_audio(make_family_processor(model_type))


def test_audio_longer_than_the_feature_extractor_window_warns() -> None:
    from vidtt.formatters.native_video import NativeVideoFormatter

    processor = make_family_processor("qwen2_5_omni")
    processor.feature_extractor.n_samples = 16000  # a 1 s window (300 s in the published one)
    with pytest.warns(UserWarning, match="hears at most 1 s of each video's audio"):
        NativeVideoFormatter().build_inputs(
            [parse_messages(user(make_clip(1, seconds=2.0), QUESTION))], processor
        )
