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
from vidtt.engine.prefix import MIB, Block, Prefix, PrefixCache, default_limit
from vidtt.engine.reuse import spans, split

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
    assert (stats.hits, stats.misses) == (4, 5)  # the 2 videos, the pair, the image, the text
    assert stats.blocks > 0 and stats.bytes > 0 and stats.evictions == 0


def test_a_reused_start_is_the_prompt_up_to_its_last_visual_token(
    cached: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    from vidtt.engine.generate import visual_token_ids

    pipe = with_store(cached, PrefixCache(64 * MIB))
    first, second = (pipe.ask(str(videos["h264"]), q) for q in QUESTIONS[:2])
    row = pipe.encode([pipe.prepare({"videos": [str(videos["h264"])], "question": "x"})]).rows[0]
    ids = row.inputs["input_ids"][0].tolist()
    visual = visual_token_ids(pipe.processor)
    assert ids[row.visual_end - 1] in visual and not visual & set(ids[row.visual_end :])
    assert first.usage.cached_tokens == 0 and second.usage.cached_tokens == row.visual_end
    assert first.usage.visual_tokens < row.visual_end < second.usage.prompt_tokens


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
    # the first turn's prompt and answer were kept, in blocks of 16 tokens: the second turn
    # computes little more than its own question
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= first.usage.prompt_tokens + len(first.token_ids) - 32
    assert second.usage.cached_tokens > first.usage.prompt_tokens - 16
    assert streamed.answer.usage.cached_tokens >= second.usage.cached_tokens


def test_prompts_of_text_alone_share_their_kept_blocks(
    cached: vidtt.Pipeline, whole: vidtt.Pipeline
) -> None:
    pipe = with_store(cached, PrefixCache(64 * MIB))
    notes = " ".join(f"At {n}:00 a cat walks past a red door and sits." for n in range(12))
    asked = [
        {"messages": [{"role": "user", "content": f"{notes}\nQuestion: {q}"}]} for q in QUESTIONS
    ]
    first, *rest = [pipe.batch([a])[0] for a in asked]
    assert [a.token_ids for a in [first, *rest]] == [whole.batch([a])[0].token_ids for a in asked]
    assert first.usage.cached_tokens == 0
    for answer in rest:  # the notes are kept, up to the last whole block before the question
        assert (
            first.usage.prompt_tokens - 40 < answer.usage.cached_tokens < answer.usage.prompt_tokens
        )


def test_the_least_recently_used_start_goes_first_within_the_bound(
    cached: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    probe = with_store(cached, PrefixCache(64 * MIB))
    probe.ask(str(videos["h264"]), "Hi?")
    one = probe.engine.prefix_stats().bytes
    store = PrefixCache(int(one * 2.5))  # room for two prompts' blocks
    pipe = with_store(cached, store)
    for name in ("h264", "vp9", "h264", "mpeg4"):  # h264 used again: vp9 is the oldest
        pipe.ask(str(videos[name]), "Hi?")
    assert store.stats().evictions > 0
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


def test_the_keys_cover_pixels_tokens_and_the_model() -> None:
    prompt = [5, 6, 7, 8] + [9] * 20 + [3] * 16  # 4 text tokens, 20 visual ones, 16 more
    pixels = torch.rand(2, 3, 4, 4)

    def row(pixel_values: torch.Tensor, ids: list[int] = prompt, who: str = "m") -> Any:
        input_ids = torch.tensor([ids])
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return split({**inputs, "pixel_values": pixel_values}, {9}, who)

    same = row(pixels.clone())
    assert (same.visual_end, len(same.blocks)) == (24, 2)
    assert same.blocks == row(pixels).blocks and same.start_key == row(pixels).start_key
    assert not set(row(pixels + 1e-3).blocks) & set(same.blocks)  # the media: every block
    assert not set(row(pixels, [4, *prompt[1:]]).blocks) & set(same.blocks)  # text before
    after = row(pixels, [*prompt[:30], 4, *prompt[31:]])  # text after the visual tokens
    assert after.blocks[0] == same.blocks[0] and after.blocks[1] != same.blocks[1]
    assert after.start_key == same.start_key
    assert not set(row(pixels, who="m|bfloat16").blocks) & set(same.blocks)
    late = [1] * 18 + [9] * 4 + [3] * 10  # the media after the first whole block
    one, other = row(pixels, late), row(pixels + 1e-3, late)
    assert one.blocks[0] == other.blocks[0]  # text alone: the same block
    assert one.start_key != other.start_key  # the start's last block holds the media
    short = [9] * 4 + [3] * 4  # no whole block before the media's end
    assert row(pixels, short).start_key != row(pixels + 1e-3, short).start_key
    assert row(pixels, short).start_key != row(pixels, short, who="n").start_key
    ids = torch.tensor([[1, 2] * 20])
    text = split({"input_ids": ids, "attention_mask": torch.ones_like(ids)}, {9}, "m")
    assert (text.visual_end, text.media, len(text.blocks)) == (0, "", 2)


def test_a_store_keeps_within_its_bytes_and_drops_a_start_end_first() -> None:
    def block(tokens: int = 16) -> Block:
        layers = [(torch.zeros(1, 1, tokens, 4), torch.zeros(1, 1, tokens, 4))]
        return Block(Prefix(layers=layers, length=tokens), 0, tokens)

    size = block().run.size
    store = PrefixCache(size * 3)
    for key in ("c", "b", "a"):  # a start of three blocks, kept last first
        store.put(key, block())
    assert [b.length for b in store.chain(["a", "b", "c"])] == [16, 16, 16]
    store.put("x", block())  # the start's end goes first: its beginning still serves
    assert len(store.chain(["a", "b", "c"])) == 2 and store.stats().evictions == 1
    assert len(store.chain(["a", "b"], tail="y")) == 2  # no such last block
    store.put("y", block(5))
    assert [b.length for b in store.chain(["a", "b"], tail="y")] == [16, 16, 5]
    store.put("huge", block(64))  # larger than the whole bound: not kept, nothing dropped
    assert store.chain(["huge"]) == [] and store.stats().bytes <= store.limit
    store.clear()
    assert store.stats().blocks == 0 and store.stats().bytes == 0
    with pytest.raises(ValueError):
        PrefixCache(0)
    assert 0 < default_limit(torch.device("cpu")) <= 4096 * MIB


def test_blocks_of_one_run_share_its_memory_until_the_last_goes() -> None:
    layers = [(torch.zeros(1, 1, 48, 4), torch.zeros(1, 1, 48, 4))]
    run = Prefix(layers=layers, length=48)
    store = PrefixCache(run.size * 2)
    for n in (2, 1, 0):
        store.put(f"r{n}", Block(run, 16 * n, 16))
    assert store.stats().bytes == run.size and store.stats().blocks == 3
    blocks = store.chain(["r0", "r1", "r2"])
    assert [(p.start, p.length) for p in spans(blocks)] == [(0, 48)]  # one copy lays it
    other = Prefix(layers=[(t.clone(), t.clone()) for t, _ in layers], length=48)
    store.put("o0", Block(other, 0, 16))  # fits beside it: both runs held
    assert store.stats().bytes == 2 * run.size
    third = Prefix(layers=[(t.clone(), t.clone()) for t, _ in layers], length=48)
    store.put("t0", Block(third, 0, 16))  # room for a run: r's blocks go, end first, then r
    assert store.stats().bytes == 2 * run.size and store.chain(["r0"]) == []
    assert store.stats().evictions == 3


def test_the_bound_and_the_switch_come_from_the_config(llava_dir: Path) -> None:
    pipe = pipeline(llava_dir, prefix_cache_mb=3)
    assert pipe.engine.prefix_cache is not None and pipe.engine.prefix_cache.limit == 3 * MIB
    with pytest.raises(vidtt.ConfigError, match="prefix_cache_mb"):
        pipeline(llava_dir, prefix_cache_mb=0)


def test_kept_text_before_the_media_serves_a_new_video(
    cached: vidtt.Pipeline, whole: vidtt.Pipeline, videos: dict[str, Path]
) -> None:
    pipe = with_store(cached, PrefixCache(64 * MIB))
    notes = " ".join(f"At {n}:00 a cat walks past a red door." for n in range(8))

    def asked(name: str) -> dict[str, Any]:
        content = [
            {"type": "text", "text": notes},
            {"type": "video", "video": str(videos[name])},
            {"type": "text", "text": "Does this clip agree?"},
        ]
        return {"messages": [{"role": "user", "content": content}]}

    first, second = (pipe.batch([asked(n)])[0] for n in ("h264", "vp9"))
    assert second.token_ids == whole.batch([asked("vp9")])[0].token_ids
    assert first.usage.cached_tokens == 0
    # the notes' whole blocks are reused, the new video's frames computed after them
    assert 32 <= second.usage.cached_tokens < second.usage.prompt_tokens - 64


def test_a_second_question_about_a_long_video_reuses_its_timeline(
    llava_dir: Path, videos: dict[str, Path], cache_dir: Path
) -> None:
    pipe = pipeline(llava_dir)
    options = {"min_segment": 1, "max_segments": 3, "shots": False, "note_tokens": 12}
    ask = {"strategy": "segments", "segment_options": options}
    first = pipe.ask(str(videos["h264_gop"]), "What happens?", **ask)
    second = pipe.ask(str(videos["h264_gop"]), "Which colours are there?", **ask)
    assert len(first.segments) == len(second.segments) == 3
    assert all(note.cached for note in second.segments)  # the notes came from the store
    # the final prompt (the timeline, then the question) starts as the first one did
    assert second.usage.cached_tokens >= 16
    plain = pipeline(llava_dir, prefix_cache=False)
    assert plain.ask(str(videos["h264_gop"]), "Which colours are there?", **ask).text == second.text


def test_processed_frames_are_kept_by_their_pixels() -> None:
    from vidtt.engine.processed import Processed, name_frames

    calls: list[int] = []

    def process(images: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(len(images))
        return {"pixel_values": torch.tensor(np.stack(images).astype("float32")) * kwargs["k"]}

    kept = Processed(process, limit=10_000)
    frames = np.random.default_rng(1).integers(0, 255, (3, 4, 5, 3), dtype=np.uint8)
    first = kept(list(frames), k=2)
    assert torch.equal(kept(list(frames.copy()), k=2)["pixel_values"], first["pixel_values"])
    assert len(calls) == 1  # the same pixels and keywords: answered from what was kept
    kept(list(frames), k=3)
    other = frames.copy()
    other[2, 0, 0, 0] ^= 1
    kept(list(other), k=2)
    assert len(calls) == 3  # other keywords, one other pixel: processed again
    name_frames(frames, "clip-a")  # a Clip's frames: keyed by its digest, views by place
    assert torch.equal(kept(list(frames), k=2)["pixel_values"], first["pixel_values"])
    kept([frames[1], frames[0], frames[2]], k=2)
    assert len(calls) == 5
    kept(list(frames), k=2)
    assert len(calls) == 5
    big = Processed(process, limit=10)  # nothing fits: every call is processed
    big(list(frames), k=1)
    big(list(frames), k=1)
    assert len(calls) == 7
