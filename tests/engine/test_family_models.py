"""Every video-language family generates through vidtt as through transformers itself.

For each family a tiny random-weight model (tests/family_models.py) is saved and loaded with
`vidtt.Pipeline`; its greedy answer about a video must be the very tokens that
`model.generate(**inputs, do_sample=False)` gives for the inputs vidtt's formatter built.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from family_models import BUILDERS, OWN_MAKERS, UNBUILT, family_model_dir
from tiny_models import FAMILIES, job_config

import vidtt

pytestmark = pytest.mark.slow
QUESTION = "What is happening in this video?"


def generation_class(model_type: str) -> Any:
    """The class transformers generates with for `model_type` (None when it has none)."""
    import transformers
    from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES

    name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES.get(model_type)
    return getattr(transformers, name, None) if name else None


def test_every_family_is_built_or_says_why_not() -> None:
    built = set(BUILDERS) | set(OWN_MAKERS)
    assert not built & set(UNBUILT)
    assert built | set(UNBUILT) == set(FAMILIES)


def test_unbuilt_families_are_still_missing() -> None:
    for model_type, why in UNBUILT.items():
        assert generation_class(model_type) is None, f"{model_type} can be built now ({why})"


def direct_tokens(pipe: vidtt.Pipeline, video: str) -> list[int]:
    """The new tokens of transformers' own greedy generate on vidtt's inputs for `video`."""
    prepared = pipe.prepare({"video": video, "question": QUESTION})
    inputs = pipe.formatter.build_inputs(
        [prepared.conversation], pipe.processor, timestamps=prepared.timestamps
    )
    model = pipe.model
    inputs = {k: v.to(model.dtype) if torch.is_floating_point(v) else v for k, v in inputs.items()}
    with torch.inference_mode():
        output = model.generate(**inputs, do_sample=False, max_new_tokens=4)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def assert_weights_loaded(folder: Any) -> None:
    """Every saved weight is loaded and none is made afresh (the config fits the weights)."""
    from transformers import AutoConfig

    from vidtt.engine.loading import resolve_model_class

    model_class, extra = resolve_model_class(AutoConfig.from_pretrained(folder))
    _, info = model_class.from_pretrained(folder, output_loading_info=True, **extra)
    assert not any(info.values()), info


@pytest.mark.parametrize("model_type", sorted(set(FAMILIES) - set(UNBUILT)))
def test_family_answers_as_transformers_generates(model_type: str, videos) -> None:
    folder = family_model_dir(model_type)
    pipe = vidtt.Pipeline.from_config(job_config(folder))
    assert pipe.model.config.model_type in (model_type, f"{model_type}_thinker")
    answer = pipe.ask(videos["h264"], QUESTION)
    assert answer.usage.visual_tokens > 0 and answer.usage.generated_tokens >= 1
    assert answer.token_ids == direct_tokens(pipe, str(videos["h264"]))
    assert_weights_loaded(folder)
