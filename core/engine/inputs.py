"""Which of a processor's outputs `model.generate` (and the model's forward) take."""

from __future__ import annotations

import functools
import inspect
from typing import Any


@functools.lru_cache(maxsize=64)
def forward_names(model_class: Any) -> frozenset[str]:
    """The keywords a model class's forward names."""
    return frozenset(inspect.signature(model_class.forward).parameters)


def generate_inputs(model: Any, inputs: Any) -> dict[str, Any]:
    """The processor outputs that `model.generate` takes. A processor may return more than the
    model takes (a tokenizer whose `model_input_names` list `token_type_ids`, as generic fast
    tokenizers did up to transformers 4.57, adds them for models whose forward has no such
    argument), and generate refuses any keyword that neither the model's
    `prepare_inputs_for_generation` nor (when that takes **kwargs) its `forward` names: the
    same rule as transformers' own check, so only what it would refuse is left out. Omni
    thinkers' audio features (`input_features`, `feature_attention_mask`) and the flag a
    formatter adds beside them (`use_audio_in_video`, which generate takes as the recipe's
    `generate(**inputs, use_audio_in_video=True)`) are named by `forward`, so they go through."""
    names = taken_names(model)
    if names is None:
        return dict(inputs)
    return {key: value for key, value in inputs.items() if key in names}


def taken_names(model: Any) -> set[str] | None:
    """The keywords generate lets through to the model (None when that cannot be read: every
    input is passed, for generate to judge)."""
    if getattr(getattr(model, "config", None), "is_encoder_decoder", False):
        return None  # encoder and decoder keywords count too: leave the check to transformers
    try:
        prepare = inspect.signature(model.prepare_inputs_for_generation).parameters
        names = set(prepare)
        if "kwargs" in names or "model_kwargs" in names:
            names |= set(inspect.signature(model.forward).parameters)
    except (AttributeError, TypeError, ValueError):
        return None
    try:  # model-agnostic keywords (attention, outputs) that generate lets through too
        from transformers.utils import TransformersKwargs

        names |= set(TransformersKwargs.__optional_keys__)
    except (ImportError, AttributeError):
        pass
    return names
