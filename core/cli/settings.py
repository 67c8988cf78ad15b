"""What the model-running commands share: the settings resolved once from the config file and the
command line, checked before any model loads, and the pipeline loaded from them.

Each command checks everything that needs no model first (config, options, question, local
videos) and samples the videos, and only then loads the model.
"""

from __future__ import annotations

import argparse
from typing import Any

from vidtt.cli.interrupt import make_cancellable
from vidtt.cli.options import config_from_args
from vidtt.config import PipelineConfig, join_problems, load_config
from vidtt.engine.loading import with_frame_rule
from vidtt.errors import ConfigError
from vidtt.pipeline.preflight import preflight, question_problems, sample_videos, video_problems
from vidtt.settings.resolve import Settings


def command_config(args: argparse.Namespace, config_file: str | None = None) -> PipelineConfig:
    """The `--config` file (or the defaults) with the command-line options on top."""
    return command_settings_unchecked(args, config_file).config


def command_settings_unchecked(
    args: argparse.Namespace, config_file: str | None = None
) -> Settings:
    """The config file read once, its registry built once, the command line laid over it."""
    path = config_file or getattr(args, "config", None)
    base = load_config(path, check_names=False) if path else PipelineConfig()
    registry = base.registry()
    return Settings(config_from_args(args, base, registry), registry)


def build_pipeline(settings: Settings | PipelineConfig, processor: Any = None) -> Any:
    """Load the model (the slow part) with generation that Ctrl-C can stop."""
    from vidtt.pipeline.core import Pipeline

    pipe = Pipeline(settings, processor=processor)
    make_cancellable(pipe.model)
    return pipe


def command_settings(
    args: argparse.Namespace, videos: Any = None, question: Any = None, ask: bool = False
) -> Settings:
    """The command's settings, resolved once, after every check that needs no model: the
    config's problems, the videos' and the question's are reported in one line."""
    try:
        settings = command_settings_unchecked(args)
    except ConfigError as exc:  # report the other problems in the same line
        found: list[Exception] = [exc, *video_problems(videos)] if videos is not None else [exc]
        found += question_problems(question) if ask else []
        raise ConfigError(join_problems([str(e) for e in found])) from None
    preflight(settings.config, settings.registry, videos, question, ask=ask)
    return settings.with_user_rule()


def prepared(args: argparse.Namespace, question: Any = None, ask: bool = True) -> tuple[Any, list]:
    """Check, sample the videos, then load: the pipeline and the sampled clips."""
    settings = command_settings(args, args.videos, question, ask=ask)
    settings, processor = with_frame_rule(settings)
    if settings.config.max_visual_tokens or settings.config.fit:  # planned with the processor
        return build_pipeline(settings, processor), list(args.videos)
    clips = sample_videos(settings, args.videos)
    return build_pipeline(settings, processor), clips
