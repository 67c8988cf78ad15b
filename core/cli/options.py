"""Command-line options shared by `ask`, `chat`, `run`, `sample` and `serve`.

One way to make a command's parser (`subcommand`), one definition of every sampling, prompt and
generation flag, and one function that lays them over a `PipelineConfig`, so each command
accepts the same spelling with the same meaning as the Python option models (`SamplerOptions`
and the sampler's own model, `GenerationOptions`).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import ValidationError

from vidtt.config import DEFAULT_MODEL, ConfigSource, PipelineConfig
from vidtt.errors import ConfigError, OptionsError
from vidtt.interfaces import RATE_OPTIONS
from vidtt.plugins.registry import Registry
from vidtt.settings.resolve import sampler_taking
from vidtt.validation import describe

TIMED_OPTIONS = RATE_OPTIONS


def key_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as JSON when it parses (`3`, `true`, `[320, 240]`), else text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def size_value(text: str) -> int | tuple[int, int]:
    """`384` (the shorter side) or `WIDTHxHEIGHT` (exact)."""
    width, sep, height = text.lower().partition("x")
    try:
        return (int(width), int(height)) if sep else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected pixels (384) or WIDTHxHEIGHT (320x240), got {text!r}"
        ) from None


def subcommand(
    sub: Any, name: str, help: str, common: argparse.ArgumentParser
) -> argparse.ArgumentParser:
    """A subcommand parser that also takes --debug, and no abbreviated options."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=[common],
        allow_abbrev=False,
    )


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """--sampler, --frames, --max-side, --size, --start, --end, --every, --fps, -o."""
    group = parser.add_argument_group("sampling (override the config's sampler_options)")
    _add_frame_options(group)
    _add_time_options(group)
    _add_budget_options(group)
    group.add_argument(
        "-o",
        "--sampler-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sampler_option",
        help="any option of the sampler, e.g. -o rule=center -o min_frames=4 (repeatable; "
        "VALUE is read as JSON when it parses)",
    )


def _add_frame_options(group: Any) -> None:
    """--sampler, --frames, --max-side, --size: which sampler, how many frames, how large."""
    group.add_argument(
        "--sampler", metavar="NAME", help="uniform (default), keyframe, interval or a plugin's"
    )
    group.add_argument(
        "--frames",
        type=int,
        metavar="N",
        help="how many frames: sets the sampler's count option (num_frames; max_frames for "
        "interval and keyframe samplers without num_frames)",
    )
    group.add_argument(
        "--max-side", type=int, metavar="PX", help="longer side of the frames at most PX pixels"
    )
    group.add_argument(
        "--size",
        type=size_value,
        metavar="PX|WxH",
        help="shorter side of the frames in pixels, or an exact WIDTHxHEIGHT",
    )


def _add_time_options(group: Any) -> None:
    """--start, --end, --every, --fps: which stretch of the video, and how often."""
    group.add_argument("--start", type=float, metavar="SECONDS", help="sample from this time on")
    group.add_argument("--end", type=float, metavar="SECONDS", help="sample up to this time")
    group.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="one frame every SECONDS (picks the interval sampler if none is named)",
    )
    group.add_argument(
        "--fps",
        type=float,
        metavar="RATE",
        help="frames per second (picks the interval sampler if none is named)",
    )


def _add_budget_options(group: Any) -> None:
    """--max-visual-tokens, --fit-context: frames chosen to fit a token budget."""
    group.add_argument(
        "--max-visual-tokens",
        type=int,
        metavar="N",
        help="choose the frames (and, for models that scale with size, the frame size) that "
        "fit N visual tokens (see docs/frames.md)",
    )
    group.add_argument(
        "--fit-context",
        action="store_const",
        const="context",
        dest="fit",
        help="choose the frames that fit the model's context with the question and "
        "--max-new-tokens",
    )


def add_prompt_options(parser: argparse.ArgumentParser) -> None:
    """--formatter and --timestamps."""
    group = parser.add_argument_group("prompt")
    group.add_argument(
        "--formatter",
        metavar="NAME",
        help="image-expansion, native-video or a plugin's (default: auto, chosen by the model)",
    )
    group.add_argument(
        "--timestamps",
        action="store_true",
        help="tell the model each frame's time in seconds (where the formatter supports it)",
    )


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """--max-new-tokens, --temperature, --top-p, --seed, --stop."""
    group = parser.add_argument_group("generation (override the config's generation)")
    group.add_argument(
        "--max-new-tokens", type=int, metavar="N", help="stop after N new tokens (default 256)"
    )
    group.add_argument(
        "--temperature",
        type=float,
        metavar="T",
        help="sample with this temperature (turns sampling on; default: greedy decoding)",
    )
    group.add_argument(
        "--top-p",
        type=float,
        metavar="P",
        help="nucleus sampling: keep the most likely tokens up to P (turns sampling on)",
    )
    group.add_argument("--seed", type=int, metavar="N", help="random seed, for repeatable sampling")
    group.add_argument(
        "--stop",
        action="append",
        default=None,
        metavar="TEXT",
        help="end the answer where TEXT appears (not included; repeatable)",
    )


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """Every sampling, prompt and generation option: the group a request-serving command takes."""
    add_sampling_options(parser)
    add_prompt_options(parser)
    add_generation_options(parser)


def add_model_options(parser: argparse.ArgumentParser, config: bool = True) -> None:
    """--model, --backend, --dtype and (unless the command takes a config argument) --config."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", help=f"hub id or local folder (default {DEFAULT_MODEL})")
    if config:
        add_config_option(group)
    group.add_argument(
        "--backend", help="auto (default), cpu, cuda, cuda:1, xpu, mps, npu or a plugin's"
    )
    group.add_argument("--dtype", help="auto (default), float32, float16 or bfloat16")


def add_config_option(parser: Any) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a pipeline config file (YAML, TOML or JSON); other options override it",
    )


# -- from parsed arguments to a config ------------------------------------------------------
def sampler_settings(
    args: argparse.Namespace, base: PipelineConfig, registry: Registry
) -> tuple[str, dict[str, Any]]:
    """The sampler name and options: the config's, with the command-line options on top."""
    timed = [key for key in TIMED_OPTIONS if getattr(args, key, None) is not None]
    name = getattr(args, "sampler", None) or base.sampler
    if not getattr(args, "sampler", None) and timed and not _accepts(registry, name, timed[0]):
        name = sampler_taking(registry, timed, [name])
    options = dict(base.sampler_options)
    if name != base.sampler:  # keep only what the newly chosen sampler understands
        options = {k: v for k, v in options.items() if _accepts(registry, name, k)}
    if getattr(args, "frames", None) is not None:
        sampler = registry.sampler(name)
        key = sampler.frames_option()
        if key is None:
            raise OptionsError(
                f"--frames: sampler {name!r} has no frame-count option; set its own options "
                "with -o KEY=VALUE (see its documentation)"
            )
        options[key] = args.frames
    _override_exclusive(options, args, ("size", "max_side"))
    _override_exclusive(options, args, TIMED_OPTIONS)
    for key in ("start", "end"):
        if getattr(args, key, None) is not None:
            options[key] = getattr(args, key)
    for key, value in getattr(args, "sampler_option", None) or []:
        options[key] = value
    return name, options


def _override_exclusive(
    options: dict[str, Any], args: argparse.Namespace, keys: tuple[str, ...]
) -> None:
    """A command-line value for one of `keys` replaces whichever of them the config set."""
    given = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if given:
        for key in keys:
            options.pop(key, None)
        options.update(given)


def _accepts(registry: Registry, sampler: str, option: str) -> bool:
    try:
        return option in registry.sampler(sampler).options_model.model_fields
    except Exception:  # an unknown sampler: reported when the config is checked
        return False


def generation_settings(args: argparse.Namespace, base: PipelineConfig) -> dict[str, Any]:
    """The config's generation options with the command-line ones on top."""
    data = base.generation.model_dump(exclude_unset=True)
    flags = {
        "max_new_tokens": getattr(args, "max_new_tokens", None),
        "temperature": getattr(args, "temperature", None),
        "top_p": getattr(args, "top_p", None),
        "seed": getattr(args, "seed", None),
        "stop": getattr(args, "stop", None),
    }
    data.update({k: v for k, v in flags.items() if v is not None})
    if flags["temperature"] is not None or flags["top_p"] is not None:
        data["do_sample"] = True
    return data


def config_from_args(
    args: argparse.Namespace, base: PipelineConfig, registry: Registry | None = None
) -> PipelineConfig:
    """`base` (a config file's, or the defaults) with every command-line option laid over it;
    `registry` is `base`'s (the command line names no plugins), built once by the caller."""
    data = base.model_dump(exclude_unset=True)
    for key in ("model", "backend", "dtype", "formatter", "max_visual_tokens", "fit"):
        if getattr(args, key, None):
            data[key] = getattr(args, key)
    name, data["sampler_options"] = sampler_settings(args, base, registry or base.registry())
    if name != base.sampler or "sampler" in base.model_fields_set:  # named: it stays the user's
        data["sampler"] = name
    data["generation"] = generation_settings(args, base)
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"command-line options: {describe(exc)}") from None
    return config.set_source(base.source or ConfigSource("command-line options"))
