"""The prefix cache across the model matrix: each family either continues prompts from kept
state, with answers token-identical to a full prefill, or prefills whole and says why.

Questions of different lengths about one video go in one batch (starts shared in the batch,
own tokens padded differently), then a follow-up carrying the first answer (a start found
kept, longer than the video's), each against the same model without a cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from family_models import UNBUILT, family_model_dir
from tiny_models import FAMILIES, job_config

import vidtt
from vidtt.engine import Engine

pytestmark = pytest.mark.slow

# Families that prefill whole, and the words of their reason (docs/models.md lists them).
PREFILLED_WHOLE = {
    "qwen2_vl": "RoPE",
    "qwen2_5_vl": "RoPE",
    "qwen3_vl": "RoPE",
    "qwen3_5": "RoPE",
    "qwen2_5_omni": "RoPE",
    "qwen3_omni_moe": "RoPE",
    "glm4v": "RoPE",
    "ernie4_5_vl_moe": "RoPE",
    "minicpmv4_6": "linear-attention",
    "gemma4": "sliding-window",
}
QUESTIONS = ["What is happening?", "Which colours are there, and how do they change?"]


def conversations(video: str) -> list[list[dict[str, Any]]]:
    def user(text: str) -> dict[str, Any]:
        return {"role": "user", "content": [{"type": "video", "video": video}, text]}

    return [[user(q)] for q in QUESTIONS]


def follow_up(first: list[dict[str, Any]], answer: str) -> list[dict[str, Any]]:
    return [*first, {"role": "assistant", "content": answer}, {"role": "user", "content": "Why?"}]


def parts(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Plain strings in content lists as text parts."""
    return [
        {
            **m,
            "content": [{"type": "text", "text": p} if isinstance(p, str) else p for p in c]
            if isinstance(c := m["content"], list)
            else c,
        }
        for m in messages
    ]


@pytest.mark.parametrize("model_type", sorted(set(FAMILIES) - set(UNBUILT)))
def test_answers_equal_a_full_prefill_or_the_family_prefills_whole(
    model_type: str, videos: dict[str, Path]
) -> None:
    folder = family_model_dir(model_type)
    cached = vidtt.Pipeline.from_config(job_config(folder, generation={"max_new_tokens": 8}))
    engine = Engine(cached.model, cached.processor, name=cached.engine.name)
    whole = vidtt.Pipeline(cached.settings, engine=engine)  # the same model, no cache
    asked = [{"messages": parts(c)} for c in conversations(str(videos["h264"]))]
    mine = cached.batch(asked, batch_size=2)
    theirs = [whole.batch([a])[0] for a in asked]
    assert [a.token_ids for a in mine] == [a.token_ids for a in theirs]
    again = {"messages": parts(follow_up(asked[0]["messages"], mine[0].text))}
    assert cached.batch([again])[0].token_ids == whole.batch([again])[0].token_ids
    blocker = cached.engine.reuse_blocker
    if model_type in PREFILLED_WHOLE:
        assert blocker is not None and PREFILLED_WHOLE[model_type] in blocker
        assert cached.engine.prefix_cache is None
        assert all(a.usage.cached_tokens == 0 for a in mine)
    else:
        assert blocker is None, blocker
        assert sorted(a.usage.cached_tokens > 0 for a in mine) == [False, True]
        stats = cached.engine.prefix_stats()
        assert stats is not None and stats.hits == 2 and stats.misses == 1


def test_docs_list_which_families_continue_and_which_prefill_whole() -> None:
    import re

    text = (Path(__file__).parents[2] / "docs" / "models.md").read_text()
    section = text.split("## The prefix cache per family")[1].split("\n## ")[0]
    kept, whole = section.split("**Prefilled whole**")
    named = {t for t in re.findall(r"`([a-z0-9_]+)`", kept) if t in FAMILIES}
    assert named == set(FAMILIES) - set(UNBUILT) - set(PREFILLED_WHOLE)
    assert {t for t in re.findall(r"`([a-z0-9_]+)`", whole) if t in FAMILIES} == set(
        PREFILLED_WHOLE
    )
