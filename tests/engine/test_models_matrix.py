"""Every video-language family: vidtt's model inputs equal transformers' own recipe.

vidtt hands frames to processors as uint8 arrays; the recipe here gets PIL images, so the
matrix also checks that arrays are token- and pixel-identical.

For each family a tiny processor of the family's real processor class is built once (trained
tokenizer, ChatML-like template, BOS written by the template where the family's is). The
reference is `processor.apply_chat_template(..., tokenize=True, return_dict=True)` with the
media in the messages, the same frames, `do_sample_frames=False` and the same video metadata.
Every tensor must be equal: input_ids, attention_mask, pixel tensors, grids and metadata.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_models import FAMILIES, make_family_processor

import vidtt
from vidtt import Clip, FormatterError, VideoInfo
from vidtt.pipeline.messages import parse_messages
from vidtt.plugins.choose import choose_formatter

pytestmark = pytest.mark.slow
FAMILY_NAMES = sorted(FAMILIES)


@functools.cache
def processor_of(model_type: str) -> Any:
    return make_family_processor(model_type)


@functools.cache
def formatter_of(model_type: str) -> Any:
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type)
    return choose_formatter(
        vidtt.PipelineConfig().registry(), "auto", config, processor_of(model_type)
    )


def make_clip(seed: int, count: int = 4) -> Clip:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 255, (count, 48, 64, 3), dtype=np.uint8)
    indices = [6 + 12 * i for i in range(count)]
    info = VideoInfo(duration=2.0, fps=24.0, frame_count=48, width=64, height=48)
    return Clip(
        frames=[Image.fromarray(f) for f in frames],
        indices=indices,
        timestamps=[i / 24.0 for i in indices],
        info=info,
        sampler="uniform",
        source=f"video-{seed}",
    )


CLIP_A, CLIP_B = make_clip(1), make_clip(2)
IMAGE = Image.fromarray(np.random.default_rng(3).integers(0, 255, (40, 56, 3), dtype=np.uint8))


def user(*parts: Any) -> dict[str, Any]:
    content = []
    for p in parts:
        if isinstance(p, str):
            content.append({"type": "text", "text": p})
        elif isinstance(p, Clip):
            content.append({"type": "video", "video": p})
        else:
            content.append({"type": "image", "image": p})
    return {"role": "user", "content": content}


SCENARIOS = {
    "one_video": [user(CLIP_A, "What happens?")],
    "two_videos": [user("First:", CLIP_A, "Second:", CLIP_B, "Same?")],
    "images_and_videos": [user(IMAGE, "This image, then", CLIP_A, "this video.")],
    "multi_turn": [
        user(CLIP_A, "What happens?"),
        {"role": "assistant", "content": "A cat sits."},
        user("And here?", CLIP_B),
    ],
    "continue_final": [user(CLIP_A, "Describe it."), {"role": "assistant", "content": "It is"}],
}


def recipe_messages(messages: list[dict[str, Any]], expand: bool) -> list[dict[str, Any]]:
    """The messages as a transformers user writes them: media inside the parts (frames as
    images, one per frame, for models that take no videos)."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        parts: list[dict[str, Any]] = []
        for part in content:
            if part["type"] == "video" and expand:
                parts += [{"type": "image", "image": f} for f in part["video"].frames]
            elif part["type"] == "video":
                # PIL images here, one array in vidtt: the tensors must not differ
                parts.append({"type": "video", "video": list(part["video"].frames)})
            else:
                parts.append(part)
        out.append({"role": message["role"], "content": parts})
    return out


def recipe(model_type: str, messages: list[dict[str, Any]]) -> Any:
    """transformers' own chat-template recipe for the same frames and metadata."""
    from transformers.video_utils import VideoMetadata

    processor = processor_of(model_type)
    expand = formatter_of(model_type).name == "image-expansion"
    clips = [
        p["video"]
        for m in messages
        if not isinstance(m["content"], str)
        for p in m["content"]
        if p["type"] == "video"
    ]
    kwargs: dict[str, Any] = {}
    if clips and not expand:
        kwargs["do_sample_frames"] = False
        if "video_metadata" in processor.video_processor.valid_kwargs.__annotations__:
            kwargs["video_metadata"] = [
                VideoMetadata(
                    total_num_frames=48,
                    fps=24.0,
                    width=64,
                    height=48,
                    duration=2.0,
                    video_backend="vidtt",
                    frames_indices=c.indices,
                )
                for c in clips
            ]
    final = messages[-1]["role"] == "assistant"
    return processor.apply_chat_template(
        recipe_messages(messages, expand),
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
        add_generation_prompt=not final,
        continue_final_message=final,
        processor_kwargs=kwargs,
    )


def vidtt_inputs(model_type: str, conversations: list[list[dict[str, Any]]]) -> Any:
    parsed = [parse_messages(c) for c in conversations]
    return formatter_of(model_type).build_inputs(parsed, processor_of(model_type))


def assert_same(mine: Any, theirs: Any) -> None:
    assert sorted(mine.keys()) == sorted(theirs.keys())
    for key in theirs:
        a, b = mine[key], theirs[key]
        if isinstance(b, torch.Tensor):
            assert a.shape == b.shape and a.dtype == b.dtype, key
            assert torch.equal(a, b), f"{key} differs"
        else:
            assert a == b, key


# What transformers itself refuses for a family; vidtt must refuse it too, with a FormatterError.
REFUSED = {
    ("molmo2", "two_videos"): "At most one video is supported per sample",
    ("molmo2", "multi_turn"): "At most one video is supported per sample",
}


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("model_type", FAMILY_NAMES)
def test_inputs_equal_the_transformers_recipe(model_type: str, scenario: str) -> None:
    messages = SCENARIOS[scenario]
    refused = REFUSED.get((model_type, scenario))
    if refused:
        with pytest.raises(ValueError, match=refused):
            recipe(model_type, messages)
        with pytest.raises(FormatterError, match=refused):
            vidtt_inputs(model_type, [messages])
        return
    assert_same(vidtt_inputs(model_type, [messages]), recipe(model_type, messages))


@pytest.mark.parametrize("model_type", FAMILY_NAMES)
def test_one_bos_only(model_type: str) -> None:
    processor = processor_of(model_type)
    ids = vidtt_inputs(model_type, [SCENARIOS["one_video"]])["input_ids"][0].tolist()
    bos = processor.tokenizer.convert_tokens_to_ids("<bos>")
    assert ids.count(bos) <= 1
    if FAMILIES[model_type].bos:  # the template writes BOS and the tokenizer adds one too
        assert ids[0] == bos and processor.tokenizer("x")["input_ids"][0] == bos


def test_batch_rows_choose_their_own_prompt_mode() -> None:
    """A generation prompt for one row, the final assistant message continued for another."""
    asking, continuing = SCENARIOS["one_video"], SCENARIOS["continue_final"]
    processor = processor_of("qwen2_vl")
    batch = vidtt_inputs("qwen2_vl", [asking, continuing])
    for row, messages in enumerate([asking, continuing]):
        alone = recipe("qwen2_vl", messages)["input_ids"][0]
        mask = batch["attention_mask"][row].bool()
        assert torch.equal(batch["input_ids"][row][mask], alone)
    texts = [
        processor.decode(batch["input_ids"][row][batch["attention_mask"][row].bool()])
        for row in range(2)
    ]
    assert texts[0].endswith("<|im_start|>assistant\n") and texts[1].endswith("It is")


def test_videos_with_different_frame_counts_in_one_batch_are_refused_clearly() -> None:
    short = make_clip(5, count=2)
    with pytest.raises(FormatterError, match=r"different frame counts \(4, 2\)"):
        vidtt_inputs("llava_next_video", [[user("A", CLIP_A, "B", short, "?")]])


def test_template_that_drops_videos_is_an_error() -> None:
    processor = make_family_processor("qwen2_vl")
    processor.chat_template = processor.chat_template.replace(
        "<|vision_start|><|video_pad|><|vision_end|>", ""
    )
    formatter = formatter_of("qwen2_vl")
    with pytest.raises(FormatterError, match="conversation 2: .* nothing for video 1 .* video"):
        formatter.build_inputs(
            [parse_messages([user("x", IMAGE)]), parse_messages([user(CLIP_A, "y")])], processor
        )


def test_processor_that_ignores_videos_is_an_error() -> None:
    """A processor that silently drops what it is given (InstructBLIP-Video's takes frames as
    images=) must not yield a prompt without the video."""
    processor = make_family_processor("qwen2_vl")
    original = type(processor).__call__

    def ignore_videos(self: Any, *args: Any, videos: Any = None, **kwargs: Any) -> Any:
        kwargs.pop("video_metadata", None)
        kwargs.pop("do_sample_frames", None)
        text = [t.replace("<|video_pad|>", "") for t in kwargs.pop("text")]
        return original(self, *args, text=text, **kwargs)

    processor.__class__ = type("Dropping", (type(processor),), {"__call__": ignore_videos})
    with pytest.raises(FormatterError, match="conversation 1: video 1 did not reach the model"):
        formatter_of("qwen2_vl").build_inputs([parse_messages([user(CLIP_A, "?")])], processor)


# -- docs/models.md is kept true -------------------------------------------------------------
DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


def time_conveyed(model_type: str) -> str:
    """How the family tells the model when frames were taken: found by changing only the
    timestamps (the metadata's fps) and seeing which inputs change."""
    formatter = formatter_of(model_type)
    if formatter.name == "image-expansion":
        return "none (frames as images); timestamps=True adds a text line"
    slow = make_clip(1)
    slow.indices = [3 * i for i in slow.indices]  # same frames, three times further apart
    slow.timestamps = [3 * t for t in slow.timestamps]
    slow.info = slow.info.model_copy(update={"frame_count": 144, "duration": 6.0})
    a = vidtt_inputs(model_type, [[user(make_clip(1), "?")]])
    b = vidtt_inputs(model_type, [[user(slow, "?")]])
    changed = {k for k in a if not (a[k].shape == b[k].shape and torch.equal(a[k], b[k]))}
    if "input_ids" in changed:
        return "text stamps written by the processor from the metadata"
    if any("pixel" in k for k in changed):
        return "stamps drawn on the frames from the metadata"
    if changed:
        return f"metadata tensors ({', '.join(sorted(changed))})"
    return "none (frame order only); timestamps=True adds a text line"


def frames_rule(model_type: str) -> str:
    from vidtt.settings.frame_rule import sampling_defaults

    processor = processor_of(model_type)
    rule = sampling_defaults(
        getattr(processor, "video_processor", None),
        "uniform",
        {"num_frames", "start", "end", "size", "max_side", "rule"},
        {},
        sampler_chosen=False,
        samplers={"uniform", "interval", "keyframe"},
    )
    if not rule.options:
        return "vidtt's default (uniform, 8 frames)"
    return f"{rule.sampler}: " + ", ".join(f"{k}={v:g}" for k, v in rule.options.items())


def doc_rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) >= 5:
            rows[cells[0].strip("`")] = cells
    return rows


def test_models_doc_table_is_true() -> None:
    rows = doc_rows()
    assert set(FAMILIES) <= set(rows), f"missing from docs/models.md: {set(FAMILIES) - set(rows)}"
    for model_type in FAMILIES:
        _, processor, formatter, frames, time = rows[model_type][:5]
        assert processor == f"`{type(processor_of(model_type)).__name__}`", model_type
        assert formatter == f"`{formatter_of(model_type).name}`", model_type
        assert frames == frames_rule(model_type), model_type
        assert time == time_conveyed(model_type), model_type


def test_processor_without_chat_template_is_refused_precisely() -> None:
    """InstructBLIP-Video takes frames as images= with a plain prompt: refused, with why."""
    from transformers import InstructBlipVideoConfig, InstructBlipVideoProcessor
    from transformers.models.instructblipvideo.video_processing_instructblipvideo import (
        InstructBlipVideoVideoProcessor,
    )

    from vidtt.testing.models import train_tokenizer

    tok = train_tokenizer()
    processor = InstructBlipVideoProcessor(
        video_processor=InstructBlipVideoVideoProcessor(), tokenizer=tok, qformer_tokenizer=tok
    )
    registry = vidtt.PipelineConfig().registry()
    with pytest.raises(FormatterError) as error:
        choose_formatter(registry, "auto", InstructBlipVideoConfig(), processor, "blip-video")
    message = str(error.value)
    assert "no formatter fits 'blip-video'" in message
    assert "native-video (the processor has no chat template (models such as " in message
    assert "InstructBLIP-Video take a plain prompt" in message
    assert "image-expansion (the processor takes no images)" in message
