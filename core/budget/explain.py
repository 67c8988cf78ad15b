"""`vidtt sample VIDEO --model M --explain`: the frame plan a model would get, from its processor
and config alone (no weights): the budget, tokens per frame, frames and size chosen, and why."""

from __future__ import annotations

from typing import Any

from vidtt.budget.counts import measure
from vidtt.budget.schema import BudgetPlan
from vidtt.config import PipelineConfig
from vidtt.errors import ModelLoadError
from vidtt.interfaces import SamplerOptions
from vidtt.settings.resolve import Settings
from vidtt.types import Clip, Message, TextPart, VideoPart


def model_config_of(config: PipelineConfig) -> Any:
    """The checkpoint's config (its weights are not read)."""
    from vidtt.engine.loading import auto_config, explain, hub_options

    try:
        return auto_config(config.model, hub_options(config))
    except Exception as exc:
        raise ModelLoadError(explain(config.model, exc)) from None


def plan_sampling(
    settings: Settings, video: str, processor: Any = None
) -> tuple[SamplerOptions, BudgetPlan | None, Any, Any]:
    """The sampler options the model's pipeline would use for `video` (its budget applied),
    the plan, the processor (loaded unless given) and the formatter."""
    from vidtt.budget.request import budget_of, plan_request
    from vidtt.engine.generate import context_of
    from vidtt.engine.loading import load_processor
    from vidtt.plugins.choose import choose_formatter

    config = settings.config
    processor = processor if processor is not None else load_processor(config)
    model_config = model_config_of(config)
    formatter = choose_formatter(
        settings.registry, config.formatter, model_config, processor, config.model
    )
    sampler, options = settings.sampler, settings.sampler_options()
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
