"""The prefix cache: prompts that start with the same frames continue from one kept state, and
answer exactly what a full prefill answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import vidtt
from vidtt.engine import Engine
from vidtt.engine.prefix import MIB, Prefix, PrefixCache, default_limit
from vidtt.engine.reuse import split

SETTINGS = {"backend": "cpu", "sampler_options": {"num_frames": 4}}
QUESTIONS = ["What happens?", "Describe the colours and the motion, frame by frame.", "Cat?"]


def pipeline(model: Path, **fields: Any) -> vidtt.Pipeline:
    return vidtt.Pipeline.from_config(
        {"model": str(model), **SETTINGS, "generation": {"max_new_tokens": 10}, **fields}
    )


@pytest.fixture(scope="module")
def cached(llava_dir: Path) -> vidtt.Pipeline:
    return pipeline(llava_dir)


@pytest.fixture(scope="module")
def whole(llava_dir: Path) -> vidtt.Pipeline:
    return pipeline(llava_dir, prefix_cache=False)


def with_store(pipe: vidtt.Pipeline, store: PrefixCache) -> vidtt.Pipeline:
    """A pipeline on `pipe`'s model with a store of its own."""
    engine = Engine(pipe.engine.model, pipe.processor, name=pipe.engine.name, prefix_cache=store)
    return vidtt.Pipeline(pipe.settings, engine=engine)


def requests(videos: dict[str, Path]) -> list[dict[str, Any]]:
    """Questions of different lengths about two videos, two videos at once, an image and text
    alone, in one list (so batches mix starts of different lengths and rows without one)."""
    image = np.random.default_rng(0).integers(0, 255, (40, 56, 3), dtype=np.uint8)
    out: list[dict[str, Any]] = [
        {"videos": [str(videos[name])], "question": q}
        for name in ("h264", "vp9")
        for q in QUESTIONS
    ]
    out.append({"videos": [str(videos["h264"]), str(videos["vfr"])], "question": "Same?"})
    content = [{"type": "image", "image": image}, {"type": "text", "text": "What is it?"}]
    out.append({"messages": [{"role": "user", "content": content}]})
    out.append({"messages": [{"role": "user", "content": "Say something."}]})
    return out


@pytest.mark.parametrize("batch_size", [1, 3, 9])
def test_answers_equal_a_full_prefill_in_every_batch_layout(
    cached: vidtt.Pipeline, whole: vidtt.Pipeline, videos: dict[str, Path], batch_size: int
) -> None:
    store = PrefixCache(64 * MIB)
    pipe = with_store(cached, store)
    asked = requests(videos)
    mine = pipe.batch(asked, batch_size=batch_size)
    theirs = [whole.batch([r])[0] for r in asked]  # one at a time, no padding at all
    assert [a.token_ids for a in mine] == [a.token_ids for a in theirs]
    assert [a.usage.prompt_tokens for a in mine] == [a.usage.prompt_tokens for a in theirs]
    reused = [a.usage.cached_tokens > 0 for a in mine]
    # one question of each video computes its start (whichever its batch took first), the
    # other two reuse it; a new pair of videos, an image and text alone reuse nothing
    assert sorted(reused[:3]) == sorted(reused[3:6]) == [False, True, True]
    assert reused[6:] == [False, False, False]
    stats = store.stats()
    assert (stats.hits, stats.misses) == (4, 4)  # the 2 videos, the pair, the image
    assert stats.entries == 4 and stats.bytes > 0 and stats.evictions == 0


def test_a_reused_start_is_the_prompt_up_to_its_last_visual_token(
    cached: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    from vidtt.engine.generate import visual_token_ids

    pipe = with_store(cached, PrefixCache(64 * MIB))
    first, second = (pipe.ask(str(videos["h264"]), q) for q in QUESTIONS[:2])
    row = pipe.encode([pipe.prepare({"videos": [str(videos["h264"])], "question": "x"})]).rows[0]
    ids = row.inputs["input_ids"][0].tolist()
    visual = visual_token_ids(pipe.processor)
    assert ids[row.start - 1] in visual and not visual & set(ids[row.start :])
    assert first.usage.cached_tokens == 0 and second.usage.cached_tokens == row.start
    assert first.usage.visual_tokens < row.start < second.usage.prompt_tokens


def test_a_follow_up_reuses_the_first_turn_and_answers_the_same(
    cached: vidtt.Pipeline, whole: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    pipe = with_store(cached, PrefixCache(64 * MIB))
    video = {"type": "video", "video": str(videos["vp9"])}
    turn = [{"role": "user", "content": [video, {"type": "text", "text": "What happens?"}]}]
    first = pipe.chat(turn)
    turn += [
        {"role": "assistant", "content": first.text},
        {"role": "user", "content": "And then?"},
    ]
    second = pipe.chat(turn)
    streamed = pipe.chat(turn, stream=True)
    assert "".join(streamed) == second.text == whole.chat(turn).text
    assert second.token_ids == whole.chat(turn).token_ids
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens > first.usage.visual_tokens
    assert streamed.answer.usage.cached_tokens == second.usage.cached_tokens


def test_the_least_recently_used_start_goes_first_within_the_bound(
    cached: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    probe = with_store(cached, PrefixCache(64 * MIB))
    probe.ask(str(videos["h264"]), "Hi?")
    one = probe.engine.prefix_stats().bytes
    store = PrefixCache(int(one * 2.5))  # room for two starts
    pipe = with_store(cached, store)
    for name in ("h264", "vp9", "h264", "mpeg4"):  # h264 used again: vp9 is the oldest
        pipe.ask(str(videos[name]), "Hi?")
    assert store.stats().evictions == 1 and store.stats().entries == 2
    assert store.stats().bytes <= store.limit
    assert pipe.ask(str(videos["h264"]), "Again?").usage.cached_tokens > 0
    assert pipe.ask(str(videos["vp9"]), "Again?").usage.cached_tokens == 0
    assert (store.stats().hits, store.stats().misses) == (2, 4)


def test_off_beams_and_models_that_cannot_continue_prefill_whole(
    whole: vidtt.Pipeline, cached: vidtt.Pipeline, qwen: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    assert whole.engine.prefix_stats() is None and whole.engine.reuse_blocker is None
    asked = [str(videos["h264"]), "Hi?"]
    assert whole.ask(*asked).usage.cached_tokens == 0
    pipe = with_store(cached, PrefixCache(64 * MIB))
    beams = [pipe.ask(*asked, num_beams=2, max_new_tokens=4) for _ in range(2)]
    assert [b.usage.cached_tokens for b in beams] == [0, 0]
    assert beams[0].token_ids == whole.ask(*asked, num_beams=2, max_new_tokens=4).token_ids
    assert pipe.engine.prefix_stats().misses == 0
    # Qwen2.5-VL's positions come from the whole prompt: prefilled whole, and said why
    assert "RoPE" in (qwen.engine.reuse_blocker or "")
    assert qwen.engine.prefix_cache is None
    assert [qwen.ask(*asked).usage.cached_tokens for _ in range(2)] == [0, 0]


def test_the_key_covers_pixels_tokens_and_the_model() -> None:
    ids = torch.tensor([[5, 7, 9, 9, 3, 4]])
    pixels = torch.rand(2, 3, 4, 4)

    def row(pixel_values: torch.Tensor, input_ids: torch.Tensor = ids, who: str = "m") -> Any:
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return split({**inputs, "pixel_values": pixel_values}, {9}, who)

    same, other_pixels = row(pixels.clone()), row(pixels + 1e-3)
    assert same.start == 4 and same.key == row(pixels).key
    assert other_pixels.key != same.key
    assert row(pixels, torch.tensor([[5, 8, 9, 9, 3, 4]])).key != same.key  # text before
    assert row(pixels, torch.tensor([[5, 7, 9, 9, 6, 4]])).key == same.key  # after: its own
    assert row(pixels, who="m|bfloat16").key != same.key
    text = split({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, {1}, "m")
    assert (text.start, text.key) == (0, "")


def test_a_store_keeps_within_its_bytes() -> None:
    def state(tokens: int) -> Prefix:
        return Prefix(
            layers=[(torch.zeros(1, 1, tokens, 4), torch.zeros(1, 1, tokens, 4))], length=tokens
        )

    size = state(8).size
    store = PrefixCache(size * 2)
    store.put("a", state(8))
    store.put("b", state(8))
    assert store.get("a") is not None  # a is now the most recently used
    store.put("c", state(8))
    assert store.get("b") is None and store.get("a") is not None
    store.put("huge", state(64))  # larger than the whole bound: not kept, nothing dropped
    assert store.get("huge") is None and store.stats().entries == 2
    assert store.stats().evictions == 1 and store.stats().bytes == 2 * size
    store.clear()
    assert store.stats().entries == 0 and store.stats().bytes == 0
    with pytest.raises(ValueError):
        PrefixCache(0)
    assert 0 < default_limit(torch.device("cpu")) <= 4096 * MIB


def test_the_bound_and_the_switch_come_from_the_config(llava_dir: Path) -> None:
    pipe = pipeline(llava_dir, prefix_cache_mb=3)
    assert pipe.engine.prefix_cache is not None and pipe.engine.prefix_cache.limit == 3 * MIB
    with pytest.raises(vidtt.ConfigError, match="prefix_cache_mb"):
        pipeline(llava_dir, prefix_cache_mb=0)
