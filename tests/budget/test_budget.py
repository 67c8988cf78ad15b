"""The visual-token budget plans frames (and frame sizes) by the processor's real counts.

Each plan is checked against the processor itself, called here on frames of noise (not the
planner's cached blank frames): the plan fits, one frame more (or the next larger size) does
not, and a prompt built from the plan fits the context with room for max_new_tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from vidtt import (
    Clip,
    FormatterError,
    Message,
    OptionsError,
    TextPart,
    VideoInfo,
    VideoPart,
    registry,
)
from vidtt.budget.planner import (
    Budget,
    BudgetPlan,
    clear_cache,
    plan,
    text_tokens,
    visual_tokens,
)
from vidtt.budget.sizes import _ladder
from vidtt.engine.generate import visual_token_ids

QUESTION = "What happens in this video? Describe it."
VIDEO = (96, 72)  # the frame size the sampler would give (width, height)
QWEN_FACTOR = 16  # the tiny Qwen2.5-VL: 8 px patches merged 2x2


@pytest.fixture(scope="module")
def models(llava_dir: Path, next_video_dir: Path, qwen_dir: Path) -> dict[str, tuple[Any, Any]]:
    """(processor, formatter) for image-expansion, fixed native-video and Qwen2.5-VL."""
    from transformers import AutoProcessor

    return {
        "llava": (AutoProcessor.from_pretrained(llava_dir), registry.formatter("image-expansion")),
        "next-video": (
            AutoProcessor.from_pretrained(next_video_dir),
            registry.formatter("native-video"),
        ),
        "qwen": (AutoProcessor.from_pretrained(qwen_dir), registry.formatter("native-video")),
    }


def clip(n: int, size: tuple[int, int], seed: int = 0) -> Clip:
    width, height = size
    frames = np.random.default_rng(seed).integers(0, 256, (n, height, width, 3), dtype=np.uint8)
    info = VideoInfo(width=width, height=height, fps=2.0, frame_count=n, duration=n / 2)
    return Clip(array=frames, indices=range(n), timestamps=[i / 2 for i in range(n)], info=info)


def prompt(processor: Any, formatter: Any, n: int, size: tuple[int, int]) -> Any:
    """The input ids the pipeline would send: the question about n noise frames."""
    message = Message(
        role="user", content=[VideoPart(video=clip(n, size)), TextPart(text=QUESTION)]
    )
    return formatter.build_inputs([[message]], processor)["input_ids"][0]


def counted(processor: Any, formatter: Any, n: int, size: tuple[int, int]) -> int:
    """Visual tokens in the processor's real output for n frames of noise."""
    ids = prompt(processor, formatter, n, size)
    return sum(int((ids == i).sum()) for i in visual_token_ids(processor))


def planned(processor: Any, formatter: Any, budget: Budget, **given: Any) -> BudgetPlan:
    options: dict[str, Any] = {
        "video_frames": 500,
        "max_frames": None,
        "size": VIDEO,
        "sizes": None,
        "context": None,
        "text_tokens": 0,
        "max_new_tokens": 0,
        "requested_frames": None,
    }
    return plan(processor, formatter, budget, **{**options, **given})


def test_budget_needs_a_positive_limit_or_fit() -> None:
    with pytest.raises(ValidationError, match="max_visual_tokens"):
        Budget()
    with pytest.raises(ValidationError):
        Budget(max_visual_tokens=0)
    with pytest.raises(ValidationError):
        Budget(fit="everything")  # type: ignore[arg-type]
    assert Budget.of() is None
    assert Budget.of(max_visual_tokens=5) == Budget(max_visual_tokens=5)
    assert Budget(fit="context", max_visual_tokens=9).fit == "context"


@pytest.mark.parametrize(("name", "per_frame"), [("llava", 16), ("next-video", 4), ("qwen", None)])
def test_visual_tokens_are_the_processors_own(
    models: dict[str, tuple[Any, Any]], name: str, per_frame: int | None
) -> None:
    processor, formatter = models[name]
    for n in (1, 2, 3, 5):
        assert visual_tokens(processor, formatter.name, n, *VIDEO) == counted(
            processor, formatter, n, VIDEO
        )
        if per_frame is not None:
            assert visual_tokens(processor, formatter, n, *VIDEO) == n * per_frame


def test_qwen_counts_follow_size_and_temporal_patches(
    models: dict[str, tuple[Any, Any]],
) -> None:
    processor, _ = models["qwen"]
    # 2 frames make one temporal patch: an odd count costs as much as the next even one
    assert visual_tokens(processor, "video", 3, *VIDEO) == visual_tokens(
        processor, "video", 4, *VIDEO
    )
    assert visual_tokens(processor, "video", 1, *VIDEO) == visual_tokens(
        processor, "video", 2, *VIDEO
    )
    assert visual_tokens(processor, "video", 2, 48, 32) < visual_tokens(
        processor, "video", 2, *VIDEO
    )


def test_counts_are_cached_per_processor_and_size(
    models: dict[str, tuple[Any, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    processor, formatter = models["next-video"]
    clear_cache()
    calls: list[int] = []
    build = formatter.build_inputs

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return build(*args, **kwargs)

    monkeypatch.setattr(formatter, "build_inputs", counting)
    first = visual_tokens(processor, formatter, 6, 40, 30)
    made = len(calls)
    assert visual_tokens(processor, formatter, 6, 40, 30) == first
    assert len(calls) == made
    visual_tokens(processor, formatter, 6, 41, 30)
    assert len(calls) == made + 1


@pytest.mark.parametrize(
    ("name", "limit"),
    [
        ("llava", 100),
        ("llava", 16),
        ("next-video", 101),
        ("next-video", 37),
        ("qwen", 100),
        ("qwen", 30),
    ],
)
def test_plan_is_the_most_frames_that_fit(
    models: dict[str, tuple[Any, Any]], name: str, limit: int
) -> None:
    processor, formatter = models[name]
    chosen = planned(processor, formatter, Budget(max_visual_tokens=limit))
    size = chosen.size or VIDEO
    spent = counted(processor, formatter, chosen.num_frames, size)
    assert chosen.visual_tokens == spent <= limit
    assert counted(processor, formatter, chosen.num_frames + 1, size) > limit
    assert counted(processor, formatter, chosen.num_frames + 2, size) > limit
    assert "\n" not in chosen.reason
    assert chosen.reason.startswith(f"{chosen.num_frames} frame")
    assert f"of {limit:,} visual tokens" in chosen.reason
    if name == "qwen":
        assert chosen.num_frames % 2 == 0  # an odd count would waste half a temporal patch
    else:
        assert chosen.size is None  # the count does not depend on the size: none chosen
        assert chosen.tokens_per_frame == {"llava": 16, "next-video": 4}[name]


def test_size_dependent_plan_prefers_frames_then_the_largest_size(
    models: dict[str, tuple[Any, Any]],
) -> None:
    processor, formatter = models["qwen"]
    budget = Budget(max_visual_tokens=60)
    # at full size (the processor makes 64x48 of 96x72: 12 tokens per 2 frames) only 10 fit
    assert counted(processor, formatter, 10, VIDEO) <= 60 < counted(processor, formatter, 11, VIDEO)
    chosen = planned(processor, formatter, budget, video_frames=20)
    assert chosen.num_frames == 20  # every frame, on smaller frames
    assert chosen.size is not None and chosen.size[0] < VIDEO[0] and chosen.size[1] < VIDEO[1]
    assert counted(processor, formatter, 20, chosen.size) <= 60
    ladder = _ladder(VIDEO, QWEN_FACTOR)
    larger = ladder[ladder.index(chosen.size) - 1]
    assert counted(processor, formatter, 20, larger) > 60  # the next larger size does not fit
    assert f"shrunk from {VIDEO[0]}x{VIDEO[1]}" in chosen.reason
    # few frames: full size
    few = planned(processor, formatter, budget, video_frames=6)
    assert (few.num_frames, few.size) == (6, VIDEO)


def test_given_sizes_are_the_candidates(models: dict[str, tuple[Any, Any]]) -> None:
    processor, formatter = models["qwen"]
    sizes = [(32, 32), (96, 72), (64, 48), (48, 32)]
    chosen = planned(
        processor, formatter, Budget(max_visual_tokens=60), video_frames=16, sizes=sizes
    )
    assert chosen.num_frames == 16 and chosen.size in sizes
    assert counted(processor, formatter, 16, chosen.size) <= 60
    for larger in sizes:
        if larger[0] * larger[1] > chosen.size[0] * chosen.size[1]:
            assert counted(processor, formatter, 16, larger) > 60


@pytest.mark.parametrize("name", ["llava", "next-video", "qwen"])
def test_frame_bounds_limit_the_plan(models: dict[str, tuple[Any, Any]], name: str) -> None:
    processor, formatter = models[name]
    budget = Budget(max_visual_tokens=10_000)
    whole = planned(processor, formatter, budget, video_frames=7)
    assert whole.num_frames == 7 and "every frame of the video" in whole.reason
    capped = planned(processor, formatter, budget, video_frames=50, max_frames=9)
    assert capped.num_frames == 9 and "max_frames=9" in capped.reason


@pytest.mark.parametrize("name", ["llava", "next-video", "qwen"])
def test_an_explicit_count_wins_or_names_the_most_that_fit(
    models: dict[str, tuple[Any, Any]], name: str
) -> None:
    processor, formatter = models[name]
    budget = Budget(max_visual_tokens=60)
    asked = planned(processor, formatter, budget, requested_frames=3)
    assert asked.num_frames == 3 and "3 frames asked for" in asked.reason
    most = planned(processor, formatter, budget).num_frames
    with pytest.raises(OptionsError, match=rf"the most frames that fit is {most}\b"):
        planned(processor, formatter, budget, requested_frames=most + 3)


@pytest.mark.parametrize("name", ["llava", "next-video", "qwen"])
def test_a_budget_too_small_for_one_frame_names_the_smallest_that_works(
    models: dict[str, tuple[Any, Any]], name: str
) -> None:
    processor, formatter = models[name]
    with pytest.raises(OptionsError, match=r"too small for one frame") as caught:
        planned(processor, formatter, Budget(max_visual_tokens=3))
    smallest = int(str(caught.value).split("max_visual_tokens=")[-1].replace(",", ""))
    works = planned(processor, formatter, Budget(max_visual_tokens=smallest))
    assert works.num_frames >= 1 and works.visual_tokens <= smallest
    with pytest.raises(OptionsError, match="too small"):
        planned(processor, formatter, Budget(max_visual_tokens=smallest - 1))


@pytest.mark.parametrize("name", ["llava", "next-video", "qwen"])
def test_fit_context_leaves_room_for_the_text_and_new_tokens(
    models: dict[str, tuple[Any, Any]], name: str
) -> None:
    processor, formatter = models[name]
    context, new = 300, 64
    question = [Message(role="user", content=[VideoPart(video="any.mp4"), TextPart(text=QUESTION)])]
    text = text_tokens(processor, formatter, question)
    chosen = planned(
        processor,
        formatter,
        Budget(fit="context"),
        context=context,
        text_tokens=text,
        max_new_tokens=new,
    )
    size = chosen.size or VIDEO
    length = len(prompt(processor, formatter, chosen.num_frames, size))
    assert length == text + chosen.video_tokens
    assert length + new <= context
    assert len(prompt(processor, formatter, chosen.num_frames + 1, size)) + new > context
    assert chosen.limit == context - text - new
    # with both, the smaller limit holds
    both = planned(
        processor,
        formatter,
        Budget(fit="context", max_visual_tokens=20),
        context=context,
        text_tokens=text,
        max_new_tokens=new,
    )
    assert both.visual_tokens <= 20 and both.num_frames <= chosen.num_frames


def test_fit_context_refuses_without_room(models: dict[str, tuple[Any, Any]]) -> None:
    processor, formatter = models["llava"]
    with pytest.raises(OptionsError, match="context size"):
        planned(processor, formatter, Budget(fit="context"))
    with pytest.raises(OptionsError, match="no room"):
        planned(
            processor,
            formatter,
            Budget(fit="context"),
            context=100,
            text_tokens=60,
            max_new_tokens=40,
        )
    with pytest.raises(OptionsError, match="more tokens of context room"):
        planned(
            processor,
            formatter,
            Budget(fit="context"),
            context=100,
            text_tokens=60,
            max_new_tokens=30,
        )


def test_several_videos_share_the_budget(models: dict[str, tuple[Any, Any]]) -> None:
    processor, formatter = models["next-video"]
    one = planned(processor, formatter, Budget(max_visual_tokens=41))
    two = planned(processor, formatter, Budget(max_visual_tokens=41), videos=2)
    assert (one.num_frames, two.num_frames) == (10, 5)
    assert two.visual_tokens == 2 * counted(processor, formatter, 5, VIDEO) <= 41
    assert two.sampler_options() == {"num_frames": 5}
    qwen = planned(*models["qwen"], Budget(max_visual_tokens=60), video_frames=20)
    assert qwen.sampler_options("max_frames") == {"max_frames": 20, "size": qwen.size}


@pytest.mark.parametrize("model_type", ["glm4v", "qwen3_vl"])
def test_processors_refusing_a_lone_frame_are_planned_from_two(model_type: str) -> None:
    from tiny_models import make_family_processor

    processor = make_family_processor(model_type)
    formatter = registry.formatter("native-video")
    with pytest.raises(FormatterError, match="temporal_factor"):
        counted(processor, formatter, 1, VIDEO)
    per_two = counted(processor, formatter, 2, VIDEO)
    chosen = planned(processor, formatter, Budget(max_visual_tokens=3 * per_two), min_frames=1)
    size = chosen.size or VIDEO
    assert chosen.num_frames >= 2 and counted(processor, formatter, chosen.num_frames, size) <= (
        3 * per_two
    )
    assert counted(processor, formatter, chosen.num_frames + 1, size) > 3 * per_two


def test_importing_the_planner_loads_nothing_heavy() -> None:
    import subprocess
    import sys

    code = "import sys, vidtt.budget; print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
