"""The pipeline with tiny offline models: formats, streaming, batching, conformance, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vidtt
from vidtt import ContextOverflowError, FormatterError, ModelLoadError, OptionsError, SourceError

QUESTION = "What is happening in this video?"


@pytest.fixture(scope="module")
def clip(videos):
    return vidtt.sample(videos["h264"], num_frames=4)


def prompt_of(pipe, messages, **options) -> str:
    resolved = pipe.resolve_media(vidtt.pipeline.parse_messages(messages))
    inputs = pipe.formatter.build_inputs([resolved], pipe.processor, **options)
    return pipe.processor.tokenizer.decode(inputs["input_ids"][0])


def test_one_video(llava, videos) -> None:
    answer = llava.ask(videos["h264"], QUESTION)
    assert answer.formatter == "image-expansion" and answer.backend == "cpu"
    assert answer.usage.visual_tokens == 4 * 16 and answer.usage.generated_tokens == 12
    assert answer.usage.prompt_tokens > answer.usage.visual_tokens
    assert answer.finish_reason == "length" and len(answer.token_ids) == 12
    [used] = answer.videos
    assert used.indices == [6, 18, 30, 42] and used.timestamps == pytest.approx(
        [0.25, 0.75, 1.25, 1.75]
    )
    assert answer.timings.sampling > 0 and answer.timings.prefill > 0 and answer.timings.decode > 0
    assert answer.text == llava.processor.tokenizer.decode(
        answer.token_ids, skip_special_tokens=True
    )


def test_native_video_model_is_picked_automatically(next_video, videos) -> None:
    answer = next_video.ask(videos["h264"], QUESTION)
    assert answer.formatter == "native-video"
    assert answer.usage.visual_tokens == 4 * 4  # 2x2 pooled: 4 tokens per frame


def test_two_videos_interleaved_with_text(llava, clip) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "First:"},
                {"type": "video", "video": clip},
                {"type": "text", "text": "Second:"},
                {"type": "video", "video": clip},
                {"type": "text", "text": "Same?"},
            ],
        }
    ]
    image = "<image>" * 16 * 4
    assert f"First:{image}Second:{image}Same?" in prompt_of(llava, messages)
    answer = llava.chat(messages)
    assert answer.usage.visual_tokens == 2 * 4 * 16 and len(answer.videos) == 2


def test_native_video_keeps_each_video_in_place(next_video, clip) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "A:"},
                {"type": "video", "video": clip},
                {"type": "text", "text": "B:"},
                {"type": "video", "video": clip},
            ],
        }
    ]
    assert f"A:{'<video>' * 16}B:{'<video>' * 16}" in prompt_of(next_video, messages)


def test_images_mixed_with_videos(llava, clip, tmp_path) -> None:
    red = Image.new("RGB", (40, 30), "red")
    red.save(tmp_path / "red.png")
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "path": str(tmp_path / "red.png")},
                {"type": "video", "video": clip},
                {"type": "text", "text": "Is the first picture in the video?"},
            ],
        }
    ]
    resolved = llava.resolve_media(vidtt.pipeline.parse_messages(messages))
    inputs = llava.formatter.build_inputs([resolved], llava.processor)
    assert inputs["pixel_values"].shape[0] == 5
    alone = llava.processor.image_processor(red, return_tensors="pt")["pixel_values"][0]
    assert torch.equal(inputs["pixel_values"][0], alone)
    assert llava.chat(messages).usage.visual_tokens == 5 * 16


def test_multi_turn(llava, clip) -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "video", "video": clip},
                {"type": "text", "text": "What is there?"},
            ],
        },
        {"role": "assistant", "content": "A cat on a mat."},
        {"role": "user", "content": "And what does it do?"},
    ]
    prompt = prompt_of(llava, messages)
    assert prompt.index("A cat on a mat.") < prompt.index("And what does it do?")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert llava.chat(messages).usage.generated_tokens == 12


@pytest.mark.parametrize("name", ["llava", "next_video"])
def test_streaming_equals_non_streaming(request, name, videos) -> None:
    pipe = request.getfixturevalue(name)
    whole = pipe.ask(videos["vp9"], QUESTION)
    stream = pipe.ask(videos["vp9"], QUESTION, stream=True)
    pieces = list(stream)
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    assert stream.answer.token_ids == whole.token_ids


@pytest.mark.parametrize("name", ["llava", "next_video"])
def test_batch_equals_one_by_one(request, name, videos) -> None:
    pipe = request.getfixturevalue(name)
    requests = [
        {"videos": [videos["h264"]], "question": QUESTION},
        {"videos": [videos["vp9"], videos["mpeg4"]], "question": "Describe the two."},
        {"videos": [videos["h264_gop"]], "question": "Cat?"},
    ]
    batched = pipe.batch(requests, batch_size=2)
    single = [pipe.ask(r["videos"], r["question"]) for r in requests]
    assert [a.token_ids for a in batched] == [a.token_ids for a in single]
    assert [a.usage.prompt_tokens for a in batched] == [a.usage.prompt_tokens for a in single]


def test_timestamps_option(llava, clip) -> None:
    messages = [
        {
            "role": "user",
            "content": [{"type": "video", "video": clip}, {"type": "text", "text": QUESTION}],
        }
    ]
    assert "frames at" not in prompt_of(llava, messages)
    assert "Video 1, frames at 0.2, 0.8, 1.2, 1.8 s: " in prompt_of(
        llava, messages, timestamps=True
    )


def test_finish_reason_stop(llava_dir, videos) -> None:
    pipe = vidtt.Pipeline(model=str(llava_dir), backend="cpu", sampler_options={"num_frames": 2})
    first = pipe.ask(videos["h264"], QUESTION, max_new_tokens=3).token_ids
    pipe.model.generation_config.eos_token_id = first[1]
    answer = pipe.ask(videos["h264"], QUESTION, max_new_tokens=3)
    assert answer.finish_reason == "stop" and answer.token_ids == first[:2]


def test_context_overflow_fails_early_with_numbers(tmp_path, videos) -> None:
    from tiny_models import make_llava

    folder = make_llava(tmp_path / "small", context=100)
    pipe = vidtt.Pipeline(model=str(folder), backend="cpu", sampler_options={"num_frames": 8})
    with pytest.raises(ContextOverflowError) as error:
        pipe.ask(videos["h264"], QUESTION, max_new_tokens=10)
    message = str(error.value)
    assert "128 for images and 8 video frames" in message and "context is 100" in message
    assert "fewer frames" in message


# -- conformance with the plain transformers recipe ------------------------------------------
def recipe_ids(pipe, parts: list[dict], **media) -> list[int]:
    """New token ids from the plain transformers recipe: chat template, processor, generate."""
    messages = [{"role": "user", "content": [*parts, {"type": "text", "text": QUESTION}]}]
    processor = pipe.processor
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=text, return_tensors="pt", **media)
    output = pipe.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def test_conformance_image_expansion(llava, clip) -> None:
    expected = recipe_ids(llava, [{"type": "image"}] * len(clip), images=clip.frames)
    assert llava.ask(clip, QUESTION).token_ids == expected


def test_conformance_native_video(next_video, clip) -> None:
    frames = np.stack([np.asarray(f) for f in clip.frames])
    expected = recipe_ids(next_video, [{"type": "video"}], videos=[frames], do_sample_frames=False)
    assert next_video.ask(clip, QUESTION).token_ids == expected


def test_qwen_gets_the_clips_real_frame_rate(qwen, clip) -> None:
    answer = qwen.ask(clip, QUESTION)
    assert answer.formatter == "native-video" and answer.usage.visual_tokens > 0
    messages = vidtt.pipeline.parse_messages(
        [
            {
                "role": "user",
                "content": [{"type": "video", "video": clip}, {"type": "text", "text": QUESTION}],
            }
        ]
    )
    inputs = qwen.formatter.build_inputs([qwen.resolve_media(messages)], qwen.processor)
    # 4 frames of a 48-frame, 24 fps video: sampled at 2 fps, two frames per temporal patch
    assert inputs["second_per_grid_ts"].tolist() == [pytest.approx(1.0)]


def test_conformance_qwen(qwen, clip) -> None:
    from transformers.video_utils import VideoMetadata

    metadata = VideoMetadata(total_num_frames=48, fps=24.0, frames_indices=clip.indices)
    expected = recipe_ids(
        qwen,
        [{"type": "video"}],
        videos=[clip.frames],
        video_metadata=[metadata],
        do_sample_frames=False,
    )
    assert qwen.ask(clip, QUESTION).token_ids == expected


# -- bad input -----------------------------------------------------------------------------
def test_model_folder_that_does_not_exist(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        vidtt.Pipeline(model=str(tmp_path / "nowhere"), backend="cpu")


def test_folder_that_is_not_a_model(tmp_path) -> None:
    with pytest.raises(ModelLoadError, match="has no config.json"):
        vidtt.Pipeline(model=str(tmp_path), backend="cpu")


def test_hub_id_without_network_or_cache(monkeypatch, tmp_path) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelLoadError) as error:
        vidtt.Pipeline(model="llava-hf/llava-interleave-qwen-0.5b-hf", backend="cpu")
    assert "local folder" in str(error.value) and "\n" not in str(error.value)


def test_unreachable_hub_fails_at_once(monkeypatch, tmp_path) -> None:
    import time

    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as error:
        vidtt.Pipeline(model="llava-hf/llava-interleave-qwen-0.5b-hf", backend="cpu")
    assert time.monotonic() - started < 10
    assert "http://127.0.0.1:9) cannot be reached" in str(error.value)
    assert "pass a local folder" in str(error.value)


def test_no_formatter_fits(llava_dir) -> None:
    with pytest.raises(FormatterError) as error:
        vidtt.Pipeline(model=str(llava_dir), backend="cpu", disable_plugins=["image-expansion"])
    assert "tried: native-video (the processor has no video processor" in str(error.value)
    with pytest.raises(FormatterError, match="'native-video' cannot serve"):
        vidtt.Pipeline(model=str(llava_dir), backend="cpu", formatter="native-video")


def test_empty_question_and_bad_generation_options(llava, videos) -> None:
    with pytest.raises(OptionsError, match="question is empty"):
        llava.ask(videos["h264"], "  ")
    with pytest.raises(OptionsError, match="max_new_tokens"):
        llava.ask(videos["h264"], QUESTION, max_new_tokens=0)
    with pytest.raises(OptionsError, match="temperature"):
        llava.ask(videos["h264"], QUESTION, temperature=-1)
    with pytest.raises(OptionsError, match="unknown generation option.s. 'beams'"):
        llava.ask(videos["h264"], QUESTION, beams=2)


def test_failing_video_names_which_one(llava, videos, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        llava.ask([videos["h264"], tmp_path / "gone.mp4"], QUESTION)
    assert str(error.value).startswith(f"video 2 ({tmp_path / 'gone.mp4'}): video not found")
