"""Model-aware sampling defaults: when the user set no frame count or rate, sample the way the
model's own video processor would (its fps with min/max frames, or its num_frames).

Reads only the processor side of a checkpoint (no weights). An explicit user setting always
wins; a model without a video processor, or without frame defaults, keeps vidtt's default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vidtt.interfaces import COUNT_SAMPLER, FRAME_OPTIONS, RATE_SAMPLER


@dataclass(frozen=True)
class FrameRule:
    """Which sampler and options choose the frames, and why, in words."""

    sampler: str
    options: dict[str, Any] = field(default_factory=dict)
    rule: str = ""


def video_processor_defaults(video_processor: Any) -> dict[str, Any]:
    """The frame settings a video processor carries (fps, num_frames, min/max frames)."""
    if video_processor is None:
        return {}
    names = ("fps", "num_frames", "min_frames", "max_frames")
    return {n: v for n in names if (v := getattr(video_processor, n, None)) is not None}


def sampling_defaults(
    video_processor: Any,
    sampler: str,
    sampler_fields: set[str],
    user_options: dict[str, Any] | None = None,
    sampler_chosen: bool = True,
    samplers: set[str] | None = None,
) -> FrameRule:
    """The frame rule for a model: `sampler` is the configured sampler and `sampler_fields`
    its options' names; `user_options` what the user set; `sampler_chosen` whether the user
    named the sampler (if not, a rate default may switch to the `interval` sampler when it is
    among `samplers`, the registered names)."""
    user = {k: v for k, v in (user_options or {}).items() if k in FRAME_OPTIONS}
    if user:
        said = ", ".join(f"{k}={v}" for k, v in sorted(user.items()))
        return FrameRule(sampler, {}, f"your settings ({said})")
    found = video_processor_defaults(video_processor)
    source = type(video_processor).__name__
    if video_processor is None:
        return FrameRule(sampler, {}, "vidtt's default (the model has no video processor)")
    if "fps" in found:
        rate = rate_rule(found, source, sampler, sampler_fields, sampler_chosen, samplers)
        if rate is not None:
            return rate
    if "num_frames" in found and "num_frames" in sampler_fields:
        options = {"num_frames": int(found["num_frames"])}
        return FrameRule(
            sampler, options, f"the model's {source}: num_frames={options['num_frames']}"
        )
    if "num_frames" in found and "max_frames" in sampler_fields:
        options = {"max_frames": int(found["num_frames"])}
        return FrameRule(
            sampler, options, f"the model's {source}: at most {options['max_frames']} frames"
        )
    why = "it sets no frame rate or count" if not found else f"{sampler!r} cannot follow {found}"
    return FrameRule(sampler, {}, f"vidtt's default (the model's {source}: {why})")


def rate_rule(
    found: dict[str, Any],
    source: str,
    sampler: str,
    fields: set[str],
    chosen: bool,
    samplers: set[str] | None,
) -> FrameRule | None:
    """An fps rule (with min/max frames; num_frames caps when there is no max) if the sampler
    takes a rate, or can be switched to the rate sampler."""
    if "fps" not in fields:
        if chosen or RATE_SAMPLER not in (samplers or set()):
            return None
        sampler, fields = RATE_SAMPLER, {"fps", "min_frames", "max_frames"}
    options: dict[str, Any] = {"fps": float(found["fps"])}
    cap = found.get("max_frames", found.get("num_frames"))
    if cap is not None and "max_frames" in fields:
        options["max_frames"] = int(cap)
    if "min_frames" in found and "min_frames" in fields:
        options["min_frames"] = int(found["min_frames"])
    said = ", ".join(f"{k}={v:g}" for k, v in options.items())
    return FrameRule(sampler, options, f"the model's {source}: {said} ({sampler} sampler)")


def sampling_defaults_for_model(
    model: str,
    sampler: str = COUNT_SAMPLER,
    sampler_options: dict[str, Any] | None = None,
    sampler_chosen: bool = False,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> FrameRule:
    """`sampling_defaults` for a model folder or hub id, reading only its video processor
    config (for `vidtt sample --model ...`). Uses the default plugin registry."""
    from vidtt.plugins.registry import default as default_registry

    video_processor = load_video_processor(model, revision, trust_remote_code)
    chosen = default_registry.sampler(sampler)
    names = {e.name for e in default_registry.entries("samplers")}
    return sampling_defaults(
        video_processor,
        sampler,
        set(chosen.options_model.model_fields),
        sampler_options,
        sampler_chosen,
        names,
    )


def load_video_processor(model: str, revision: str | None, trust_remote_code: bool) -> Any:
    """The checkpoint's video processor, or None when it has none (no weights are read). A hub
    id goes through the quick hub check first: offline, a model that is not cached is a
    `ModelLoadError` at once (not minutes of retries and then "no video processor")."""
    from vidtt.settings.hub import hub_keywords
    from vidtt.settings.packages import check_torchvision

    keywords = hub_keywords(model, revision, trust_remote_code)
    check_torchvision()
    from transformers import AutoVideoProcessor

    try:
        return AutoVideoProcessor.from_pretrained(model, **keywords)
    except (OSError, ValueError, KeyError):
        return None
