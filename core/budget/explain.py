"""`vidtt sample VIDEO --model M --explain`: the frame plan a model would get, from its processor
and config alone (no weights): the budget, tokens per frame, frames and size chosen, and why."""

from __future__ import annotations

from typing import Any

from vidtt.budget.plan import BudgetPlan, measure
from vidtt.config import PipelineConfig
from vidtt.errors import ModelLoadError
from vidtt.interfaces import SamplerOptions
from vidtt.types import Clip, Message, TextPart, VideoPart


def load_processor(config: PipelineConfig) -> tuple[Any, Any]:
    """The model's processor and config (its weights are not read)."""
    from vidtt.engine.loading import auto_config, check_hub, check_local_model, explain

    check_local_model(config.model)
    check_hub(config.model, config.revision)
    from transformers import AutoProcessor

    common = {"revision": config.revision, "trust_remote_code": config.trust_remote_code}
    try:
        processor = AutoProcessor.from_pretrained(config.model, **common)
        return processor, auto_config(config.model, common)
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None


def context_of(model_config: Any) -> int | None:
    text = getattr(model_config, "text_config", None) or model_config
    return getattr(text, "max_position_embeddings", None)


def plan_sampling(
    config: PipelineConfig, registry: Any, video: str
) -> tuple[SamplerOptions, BudgetPlan | None, Any, Any]:
    """The sampler options the model's pipeline would use for `video` (its budget applied),
    the plan, the processor and the formatter."""
    from vidtt.budget.request import budget_of, plan_request
    from vidtt.plugins.choose import choose_formatter

    processor, model_config = load_processor(config)
    formatter = choose_formatter(registry, config.formatter, model_config, processor, config.model)
    sampler = registry.sampler(config.sampler)
    options = sampler.options(**config.sampler_options)
    budget = budget_of({"max_visual_tokens": config.max_visual_tokens, "fit": config.fit})
    if budget is None:
        return options, None, processor, formatter
    key = sampler.frames_option()
    conversation = [Message(role="user", content=[VideoPart(video=video), TextPart(text="")])]
    options, plan = plan_request(
        budget,
        processor=processor,
        formatter=formatter,
        sampler=sampler,
        options=options,
        conversation=conversation,
        explicit=config.sampler_options.get(key) if key else None,
        context=context_of(model_config),
        max_new_tokens=config.generation.max_new_tokens,
    )
    return options, plan, processor, formatter


def describe(clip: Clip, plan: BudgetPlan | None, processor: Any, formatter: Any) -> dict:
    """The plan in numbers: the budget's, or the sampled frames' cost without one."""
    if plan is not None:
        return plan.model_dump()
    cost = measure(processor, formatter, len(clip), clip.width, clip.height)
    return {
        "budget": None,
        "num_frames": len(clip),
        "size": [clip.width, clip.height],
        "visual_tokens": cost.visual,
        "tokens_per_frame": cost.visual / max(len(clip), 1),
        "reason": f"{len(clip)} frames at {clip.width}x{clip.height} take {cost.visual} visual "
        f"tokens ({cost.visual / max(len(clip), 1):g} per frame); no budget set",
    }
