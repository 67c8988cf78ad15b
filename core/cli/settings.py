"""What the model-running commands share: the settings resolved once from the config file and the
command line, checked before any model loads, and the pipeline loaded from them.

Each command checks everything that needs no model first (config, options, question, local
videos: that they exist and open as media) and reports every problem found in one line; it then
samples the videos (reporting every one that fails), and only then loads the model.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

from vidtt.cli.interrupt import make_cancellable
from vidtt.cli.options import config_from_args
from vidtt.config import ConfigProblems, PipelineConfig, join_problems, load_config
from vidtt.engine.loading import with_frame_rule
from vidtt.errors import ConfigError, OptionsError, VidttError
from vidtt.media.sample import label_of, media_context, sample_video
from vidtt.pipeline.preflight import check_context_early, question_problems, video_problems
from vidtt.pipeline.resolved import strategy_of
from vidtt.settings.resolve import Settings
from vidtt.types import Clip, VideoSource


def config_path(args: argparse.Namespace) -> str | None:
    """The config file, `--config FILE` on every command or the CONFIG argument of `run` and
    `serve`; given both ways, they must name the same file."""
    flag, given = getattr(args, "config", None), getattr(args, "config_file", None)
    if flag and given and flag != given:
        raise OptionsError(
            f"two config files ({given} and --config {flag}): give one, as CONFIG or --config"
        )
    return flag or given  # type: ignore[no-any-return]


def command_settings_unchecked(
    args: argparse.Namespace, config_file: str | None = None
) -> Settings:
    """The config file read once, its registry built once, the command line laid over it. A
    file or a flag with settings that do not validate is one error that also names the problems
    of the other settings (with the command line laid over them)."""
    path = config_file or config_path(args)
    try:
        base = load_config(path, check_names=False) if path else PipelineConfig()
    except ConfigProblems as exc:
        raise ConfigProblems(_with_the_rest(args, exc)) from None
    registry = base.registry()
    try:
        return Settings(config_from_args(args, base, registry), registry)
    except ConfigProblems as exc:
        raise ConfigProblems(exc.every_problem()) from None


def _with_the_rest(args: argparse.Namespace, exc: ConfigProblems) -> list[str]:
    """The file's problems, then those of its valid settings with the command line on top."""
    if exc.rest is None:
        return list(exc.found)
    try:
        laid = config_from_args(args, exc.rest)
    except ConfigProblems as more:
        return [*exc.found, *more.every_problem()]
    except VidttError as more:
        return [*exc.found, str(more)]
    return [*exc.found, *laid.problems(laid.registry())]


def build_pipeline(
    settings: Settings | PipelineConfig, processor: Any = None, cache: Any = None
) -> Any:
    """Load the model (the slow part) with generation that Ctrl-C can stop; `cache`, a
    `FrameCache`, replaces the pipeline's own (in memory)."""
    from vidtt.pipeline.core import Pipeline

    pipe = Pipeline(settings, processor=processor, cache=cache)
    make_cancellable(pipe.model)
    return pipe


def command_settings(
    args: argparse.Namespace, videos: Any = None, question: Any = None, ask: bool = False
) -> Settings:
    """The command's settings, resolved once, after every check that needs no model: the
    config's and the command line's problems, the videos' (missing, or not media) and the
    question's are reported together, in one line (the error of the first kind found)."""
    found: list[str] = []
    kind: type[VidttError] = ConfigError
    settings: Settings | None = None
    try:
        settings = command_settings_unchecked(args)
    except ConfigProblems as exc:
        found += exc.found
    except VidttError as exc:  # say an unknown sampler named for --frames
        found.append(str(exc))
        kind = type(exc)
    else:
        found += settings.config.problems(settings.registry)
    others: list[VidttError] = []
    if videos is not None:
        others += sorted(
            [*video_problems(videos), *unreadable_videos(videos, settings)], key=_video_number
        )
    if ask:
        others += question_problems(question)
    if found or others:
        kind = kind if found else type(others[0])
        raise kind(join_problems([*found, *(str(e) for e in others)]))
    assert settings is not None
    return settings.with_user_rule()


def _video_number(problem: Exception) -> int:
    number = re.match(r"video (\d+) ", str(problem))
    return int(number.group(1)) if number else 0


def unreadable_videos(videos: Sequence[Any], settings: Settings | None) -> list[VidttError]:
    """A problem per local video that exists but does not open as media (corrupt, not a
    video), found without decoding a frame; for samplers that read through core's decode
    layer (`Sampler.uses_decode_layer`: a plugin's may read what FFmpeg does not), and for
    any when the settings themselves failed."""
    from vidtt.media.decode.opening import open_container

    if settings is not None and not _uses_decode_layer(settings):
        return []
    found: list[VidttError] = []
    with media_context(settings.config.limits if settings is not None else None):
        for number, video in enumerate(videos, 1):
            try:
                source = VideoSource.of(video)
                if source.kind != "path":
                    continue
                source.checked_path()
            except VidttError:  # missing: `video_problems` says so
                continue
            try:
                with open_container(source):
                    pass
            except VidttError as exc:
                found.append(type(exc)(f"video {number} ({label_of(video)}): {exc}"))
    return found


def _uses_decode_layer(settings: Settings) -> bool:
    try:
        return settings.sampler.uses_decode_layer
    except VidttError:
        return False


def sample_all(settings: Settings, videos: Sequence[Any]) -> list[Clip]:
    """Each video sampled with the settings' sampler, options, frame rule and limits; every
    video that fails is named in one error (the first failure's kind)."""
    sampler, options = settings.sampler, settings.sampler_options()
    clips: list[Clip] = []
    found: list[VidttError] = []
    with media_context(settings.config.limits):
        for number, video in enumerate(videos, 1):
            try:
                clips.append(
                    sample_video(video, sampler, options, rule=settings.rule, number=number)
                )
            except VidttError as exc:
                found.append(exc)
    if found:
        raise type(found[0])(join_problems([str(e) for e in found]))
    return clips


def prepared(args: argparse.Namespace, question: Any = None, ask: bool = True) -> tuple[Any, list]:
    """Check, sample the videos, then load: the pipeline and the sampled clips."""
    settings = command_settings(args, args.videos, question, ask=ask)
    settings, processor = with_frame_rule(settings)
    config = settings.config
    if (
        config.max_visual_tokens
        or config.fit
        or config.transcript != "off"
        or strategy_of(config, None) == "segments"
    ):  # planned with the processor, heard or cut into segments: the pipeline samples them
        return build_pipeline(settings, processor), list(args.videos)
    clips = sample_all(settings, args.videos)
    if isinstance(question, str):  # too long for the context: said before the model loads
        from vidtt.engine.loading import load_processor

        processor = processor if processor is not None else load_processor(config)
        timestamps = bool(getattr(args, "timestamps", False))
        check_context_early(settings, processor, clips, question, timestamps)
    return build_pipeline(settings, processor), clips
