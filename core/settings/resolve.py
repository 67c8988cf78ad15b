"""`Settings`: a run's settings resolved once and handed on to every step that needs them.

A config (file, dict, command-line or request options laid over it) becomes `Settings` in one
step: the config read and validated once, the plugin registry built once, names checked once.
The model's frame rule is chosen once, from its video processor, when that is first at hand
(`with_video_processor`); after that every step reads the same rule and the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeAlias

from vidtt.config import PipelineConfig, load_config
from vidtt.interfaces import COUNT_SAMPLER, RATE_SAMPLER, Sampler, SamplerOptions
from vidtt.plugins.registry import Registry
from vidtt.settings.frame_rule import FRAME_OPTIONS, FrameRule, sampling_defaults

ConfigLike: TypeAlias = "PipelineConfig | dict[str, Any] | str | Path"


@dataclass(frozen=True)
class Settings:
    """The config, its registry, and (once the model's processor was read) the frame rule."""

    config: PipelineConfig
    registry: Registry
    frame_rule: FrameRule | None = None

    @property
    def sampler_named(self) -> bool:
        """Whether the user named the sampler (a config file, an argument or a flag)."""
        return "sampler" in self.config.model_fields_set

    @property
    def sampler(self) -> Sampler:
        """The sampler the frame rule chose (the configured one until there is a rule)."""
        name = self.frame_rule.sampler if self.frame_rule else self.config.sampler
        return self.registry.sampler(name)

    @property
    def sampler_values(self) -> dict[str, Any]:
        """The sampler's option values: the rule's defaults under the user's settings."""
        defaults = self.frame_rule.options if self.frame_rule else {}
        return {**defaults, **self.config.sampler_options}

    def sampler_options(self) -> SamplerOptions:
        return self.sampler.options(**self.sampler_values)

    @property
    def rule(self) -> str:
        """The frame rule in words ("" before the model's processor was read)."""
        return self.frame_rule.rule if self.frame_rule else ""

    @property
    def needs_video_processor(self) -> bool:
        """Whether the frame rule still waits for the model's video processor: no rule yet,
        and the user set no frame count or rate (which would decide it alone)."""
        return self.frame_rule is None and not self.user_frame_options()

    def user_frame_options(self) -> dict[str, Any]:
        return {k: v for k, v in self.config.sampler_options.items() if k in FRAME_OPTIONS}

    def sampler_taking(self, options: Any) -> Sampler:
        """The sampler for `options` (say a request's `fps`): this one if it takes them all,
        else the first of the configured and built-in samplers that does."""
        names = [self.sampler.name, self.config.sampler]
        return self.registry.sampler(sampler_taking(self.registry, options, names))

    def with_video_processor(self, video_processor: Any) -> Settings:
        """These settings with the model's frame rule chosen (once: a rule stays)."""
        if self.frame_rule is not None:
            return self
        chosen = self.registry.sampler(self.config.sampler)
        rule = sampling_defaults(
            video_processor,
            chosen.name,
            set(chosen.options_model.model_fields),
            self.config.sampler_options,
            sampler_chosen=self.sampler_named,
            samplers=set(self.registry.names("samplers")),
        )
        return replace(self, frame_rule=rule)

    def with_user_rule(self) -> Settings:
        """The rule when the user's own frame options decide it (no processor needed)."""
        if self.frame_rule is not None or not self.user_frame_options():
            return self
        return self.with_video_processor(None)


def sampler_taking(registry: Registry, options: Any, names: list[str]) -> str:
    """The first sampler of `names`, then the built-in count and rate samplers, that takes
    every option in `options` (a rate picks the interval sampler); the first of `names` when
    none does, so that its own error names the option it lacks. A built-in that is disabled
    is an error naming it."""
    for name in [*names, COUNT_SAMPLER, RATE_SAMPLER]:
        if registry.sampler(name).takes(options):  # a disabled built-in says so
            return name
    return names[0]


def resolve(config: ConfigLike | None = None, *, check: bool = True, **overrides: Any) -> Settings:
    """Settings from a config (instance, dict or file) with `overrides` laid over it; the
    registry is built and (unless `check` is False, for a caller that gathers the problems
    itself) every name checked here, once."""
    merged = merged_config(config, overrides)
    registry = merged.registry()
    if not check:
        return Settings(merged, registry)
    merged.check(registry)
    return Settings(merged, registry).with_user_rule()


def merged_config(config: ConfigLike | None, overrides: dict[str, Any]) -> PipelineConfig:
    """The config (read once) with `overrides` on top, validated; errors name the file."""
    from pydantic import ValidationError

    from vidtt.errors import ConfigError
    from vidtt.validation import describe

    base = load_config(config, check_names=False) if config is not None else PipelineConfig()
    if not overrides:
        return base
    try:
        merged = PipelineConfig.model_validate({**base.model_dump(exclude_unset=True), **overrides})
    except ValidationError as exc:
        where = base.source.path if base.source is not None else None
        named = f"{where} with the pipeline settings" if where else "pipeline settings"
        raise ConfigError(f"{named}: {describe(exc)}") from None
    return merged.set_source(base.source)
