"""Command-line options shared by `ask`, `chat`, `run`, `sample` and `serve`.

One way to make a command's parser (`subcommand`), one definition of every sampling, prompt and
generation flag, and one function that lays them over a `PipelineConfig`, so each command
accepts the same spelling with the same meaning as the Python option models (`SamplerOptions`
and the sampler's own model, `GenerationOptions`).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from typing import Any, NoReturn

from vidtt.config import DEFAULT_MODEL, ConfigProblems, ConfigSource, PipelineConfig, validate
from vidtt.errors import OptionsError
from vidtt.interfaces import RATE_OPTIONS, options_over
from vidtt.plugins.registry import Registry
from vidtt.settings.resolve import sampler_taking
from vidtt.types import TRANSCRIPT_MODES

TIMED_OPTIONS = RATE_OPTIONS


def key_value(text: str) -> tuple[str, Any]:
    """`KEY=VALUE` with VALUE read as JSON when it parses (`3`, `true`, `[320,240]`), a list or
    mapping written as YAML's flow style (`[320, 240]`, `[a, b]`, `{x: 1}`), else as text."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        pass
    if value.strip()[:1] in ("[", "{"):
        return key.strip(), _flow_value(text, value)
    return key.strip(), value


def _flow_value(text: str, value: str) -> Any:
    """A YAML flow list or mapping (`[320, 240]`); only these: a bare `yes` stays text."""
    import yaml

    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        raise argparse.ArgumentTypeError(
            f"cannot read the list or mapping in {text!r}: write it as JSON, e.g. size=[320,240]"
        ) from None


# -- the parser: one-line mistakes with the subcommand's usage and a "did you mean" ----------
class Parser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors name a misspelled flag or command and its closest
    spelling (`--frame` -> `--frames`, `aks` -> `ask`), with the usage of the command at hand
    (each command's parser is one too: argparse makes them of their parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._given: list[str] = []

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        namespace, extras = super().parse_known_args(args, namespace)
        if extras and self._commands() is None:  # a command's words: its own parser says so
            self.error(self._unrecognized(extras))
        return namespace, extras

    def error(self, message: str) -> NoReturn:
        """Report the misspelling behind a mistake first: an unknown command, or an unknown
        flag (which can also make argparse miss a required option: that goes unsaid)."""
        commands = self._commands()
        if commands is not None:
            message = self._command_problem(commands) or message
        elif not message.startswith("unrecognized arguments"):
            unknown = [w for w in self._given_flags() if not self._known(w)]
            if unknown:
                required = message.startswith("the following arguments are required")
                message = self._unrecognized(unknown) + ("" if required else f"; {message}")
        super().error(message)

    def _commands(self) -> dict[str, Any] | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                return dict(action.choices)
        return None

    def _command_problem(self, commands: dict[str, Any]) -> str | None:
        """An unknown command word, or a command's flag given before the command's name."""
        words = [w for w in self._given if not w.startswith("-")]
        command = words[0] if words else None
        before = self._given[: self._given.index(command)] if command else self._given
        for flag in (w for w in before if w.startswith("-") and not self._known(w)):
            owners = [n for n, p in commands.items() if p._known(flag)]
            if owners:
                return f"{flag.partition('=')[0]} belongs after the command: vidtt {owners[0]} ..."
            return self._unrecognized([flag])
        if command is None or command in commands:
            return None
        close = difflib.get_close_matches(command, list(commands), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown command {command!r}{hint}; the commands: {', '.join(commands)}"

    def _given_flags(self) -> list[str]:
        """The flag-like words given, up to a `--` (negative numbers are values)."""
        words = self._given[: self._given.index("--")] if "--" in self._given else self._given
        return [w for w in words if _is_flag(w)]

    def _known(self, word: str) -> bool:
        flag = word.partition("=")[0] if word.startswith("--") else word[:2]
        return flag in self._option_string_actions

    def _unrecognized(self, extras: list[str]) -> str:
        """`unrecognized arguments: --frame 8 (did you mean --frames?)`."""
        text = f"unrecognized arguments: {' '.join(extras)}"
        flags = [f for f in self._option_string_actions if f.startswith("--")]
        for word in (w for w in extras if _is_flag(w) and not self._known(w)):
            close = difflib.get_close_matches(word.partition("=")[0], flags, n=1, cutoff=0.6)
            if close:
                return f"{text} (did you mean {close[0]}?)"
        return text


def _is_flag(word: str) -> bool:
    return word.startswith("-") and word != "-" and not _NUMBER.match(word)


_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


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
    """A subcommand parser (a `Parser`: "did you mean" on a misspelled flag) that also takes
    --debug, and no abbreviated options."""
    return sub.add_parser(  # type: ignore[no-any-return]
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=[common],
        allow_abbrev=False,
    )


def add_sampling_options(parser: argparse.ArgumentParser, sample: bool = False) -> None:
    """--sampler, --frames, --max-side, --size, --start, --end, --every, --fps, -o, and the
    budget flags (`sample`: their help as `vidtt sample` means them, with --model)."""
    group = parser.add_argument_group("sampling (override the config's sampler_options)")
    _add_frame_options(group)
    _add_time_options(group)
    _add_budget_options(group, SAMPLE_BUDGET_HELP if sample else BUDGET_HELP)
    _add_sampler_option(group)


def add_window_sampling_options(parser: argparse.ArgumentParser) -> None:
    """The sampling flags that apply to a live window: --sampler, --frames, --max-side,
    --size, -o and the budget flags (no --start, --end, --every or --fps: the window decides
    the time range)."""
    group = parser.add_argument_group("sampling each window (override the config's)")
    _add_frame_options(group)
    _add_budget_options(group, BUDGET_HELP)
    _add_sampler_option(group)


def _add_sampler_option(group: Any) -> None:
    group.add_argument(
        "-o",
        "--sampler-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="sampler_option",
        help=f"any option of the sampler, e.g. {SAMPLER_OPTION_EXAMPLES} (repeatable; VALUE is "
        "read as JSON when it parses, lists also as [320, 240])",
    )


# every one is run by the tests through this parser and the sampler (tests/cli/test_issue27_cli.py)
SAMPLER_OPTION_EXAMPLES = "-o rule=linspace, --sampler interval -o min_frames=4"

BUDGET_HELP = {
    "max_visual_tokens": "choose the frames (and, for models that scale with size, the frame "
    "size) that fit N visual tokens (see docs/frames.md)",
    "fit": "choose the frames that fit the model's context with the question and --max-new-tokens",
}
SAMPLE_BUDGET_HELP = {
    "max_visual_tokens": "with --model: choose the frames (and, for models that scale with "
    "size, the frame size) that fit N visual tokens of that model (see docs/frames.md)",
    "fit": "with --model: choose the frames that fit that model's context, leaving room for "
    "the config's max_new_tokens (no question is counted)",
}


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


def _add_budget_options(group: Any, help: dict[str, str]) -> None:
    """--max-visual-tokens, --fit-context: frames chosen to fit a token budget."""
    group.add_argument("--max-visual-tokens", type=int, metavar="N", help=help["max_visual_tokens"])
    group.add_argument(
        "--fit-context", action="store_const", const="context", dest="fit", help=help["fit"]
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


def add_long_options(parser: argparse.ArgumentParser, flag: bool = True) -> None:
    """--long (strategy segments) and --segment-option KEY=VALUE (`flag` False: the latter
    only, for a command that always cuts into segments)."""
    group = parser.add_argument_group("long videos (docs/long.md)")
    if flag:
        group.add_argument(
            "--long",
            action="store_const",
            const="segments",
            dest="strategy",
            help="answer from a timeline of segment notes: each part of the video described, "
            "then the question answered from the notes (strategy: segments)",
        )
    group.add_argument(
        "--segment-option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a segment option, e.g. max_segments=24, segment_frames=8, refine=true (repeatable)",
    )


def segment_flags(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Lay --long and --segment-option over the config's settings in `data`."""
    if getattr(args, "strategy", None):
        data["strategy"] = args.strategy
    given = getattr(args, "segment_option", None) or []
    if given:
        data["segment_options"] = {**data.get("segment_options", {}), **dict(given)}


def add_speech_options(parser: argparse.ArgumentParser, prompt: bool = True) -> None:
    """--transcriber, --language, --transcriber-option and, for a prompt (`prompt`),
    --transcript and --max-transcript-tokens."""
    group = parser.add_argument_group("speech (what is said in the videos)")
    if prompt:
        group.add_argument(
            "--transcript",
            nargs="?",
            const="on",
            choices=TRANSCRIPT_MODES,
            help="put each video's timed transcript beside its frames; 'required': a video "
            "without audio is an error (default: off; --transcript alone: on)",
        )
        group.add_argument(
            "--max-transcript-tokens",
            type=int,
            metavar="N",
            help="at most N transcript tokens a request (segments left out evenly)",
        )
    group.add_argument(
        "--transcriber", metavar="NAME", help="whisper (default), faster-whisper or a plugin's"
    )
    group.add_argument(
        "--language", metavar="CODE", help="the language spoken, e.g. en (default: detected)"
    )
    group.add_argument(
        "--transcriber-option",
        action="append",
        type=key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a transcriber option, e.g. model=openai/whisper-base (repeatable)",
    )


def speech_flags(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Lay the speech flags over the config's settings in `data`."""
    for key in ("transcript", "transcriber", "max_transcript_tokens"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    options = dict(data.get("transcriber_options", {}))
    options.update(getattr(args, "transcriber_option", None) or [])
    if getattr(args, "language", None):
        options["language"] = args.language
    if options:
        data["transcriber_options"] = options


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
    add_long_options(parser)
    add_speech_options(parser)
    add_generation_options(parser)


def add_model_options(parser: argparse.ArgumentParser, config: bool = True) -> None:
    """--model, --config (unless `config` is False), --backend, --dtype, the prefix cache."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", help=f"hub id or local folder (default {DEFAULT_MODEL})")
    if config:
        add_config_option(group)
    group.add_argument(
        "--backend", help="auto (default), cpu, cuda, cuda:1, xpu, mps, npu or a plugin's"
    )
    group.add_argument("--dtype", help="auto (default), float32, float16 or bfloat16")
    group.add_argument(
        "--no-prefix-cache",
        dest="prefix_cache",
        action="store_false",
        default=None,
        help="prefill every prompt whole (by default the state of a video's start is kept and "
        "reused by every question about it)",
    )
    group.add_argument(
        "--prefix-cache-mb",
        type=int,
        metavar="MB",
        help="the prefix cache's bound (default 1/16 of the device's memory, at most 4096)",
    )


def add_config_option(parser: Any) -> None:
    """`--config FILE`, which every command that takes a config accepts."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a pipeline config file (YAML, TOML or JSON); other options override it",
    )


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """The optional CONFIG argument of `run` and `serve` (the same as `--config FILE`)."""
    parser.add_argument(
        "config_file",
        nargs="?",
        metavar="CONFIG",
        help="a pipeline config file (YAML, TOML or JSON), as with --config; other options "
        "override it",
    )


# -- from parsed arguments to a config ------------------------------------------------------
def sampler_flags(
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
    given: dict[str, Any] = {}
    if getattr(args, "frames", None) is not None:
        sampler = registry.sampler(name)
        key = sampler.frames_option()
        if key is None:
            raise OptionsError(
                f"--frames: sampler {name!r} has no frame-count option; set its own options "
                "with -o KEY=VALUE (see its documentation)"
            )
        given[key] = args.frames
    for key in ("size", "max_side", *TIMED_OPTIONS, "start", "end"):
        if getattr(args, key, None) is not None:
            given[key] = getattr(args, key)
    given.update(getattr(args, "sampler_option", None) or [])
    return name, options_over(given, options)


def _accepts(registry: Registry, sampler: str, option: str) -> bool:
    try:
        return option in registry.sampler(sampler).options_model.model_fields
    except Exception:  # an unknown sampler: reported when the config is checked
        return False


def generation_flags(args: argparse.Namespace, base: PipelineConfig) -> dict[str, Any]:
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
    for key in ("prefix_cache", "prefix_cache_mb"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    name, data["sampler_options"] = sampler_flags(args, base, registry or base.registry())
    if name != base.sampler or "sampler" in base.model_fields_set:  # named: it stays the user's
        data["sampler"] = name
    data["generation"] = generation_flags(args, base)
    speech_flags(args, data)
    segment_flags(args, data)
    watch_flags(args, data)
    source = base.source or ConfigSource("command-line options")
    try:  # `base` validated: what fails now is the command line's
        config = validate(data, ConfigSource("command-line options"))
    except ConfigProblems as exc:  # its other settings are checked where `base` came from
        raise ConfigProblems(exc.found, exc.rest and exc.rest.set_source(source)) from None
    return unknown_options(args, config.set_source(source), registry or base.registry())


WATCH_TICK = "tick"  # `vidtt watch --every`'s dest: `every` is the interval sampler's option


def watch_flags(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """`vidtt watch`'s flags laid over the config's `watch` block, as every other flag is
    over its setting: each flag's dest is its `WatchOptions` field (`--every`: `tick`)."""
    from vidtt.types.watch import WatchOptions

    given = {}
    for name in WatchOptions.model_fields:
        value = getattr(args, WATCH_TICK if name == "every" else name, None)
        if value is not None and value is not False:
            given[name] = value
    if given:
        data["watch"] = {**data.get("watch", {}), **given}


def unknown_options(
    args: argparse.Namespace, config: PipelineConfig, registry: Registry
) -> PipelineConfig:
    """`config`, unless an `-o KEY=...` names an option its sampler does not have: then
    `ConfigProblems` with the closest spelling (`-o num_frame=8`: did you mean num_frames?),
    whose `rest` (the config without those keys) finds the other problems in the same run."""
    try:
        model = registry.sampler(config.sampler).options_model
    except Exception:  # an unknown sampler: reported when the config is checked
        return config
    if model.model_config.get("extra") != "forbid":  # a plugin's that takes any key
        return config
    known = list(model.model_fields)
    given = [key for key, _ in getattr(args, "sampler_option", None) or []]
    unknown = [key for key in dict.fromkeys(given) if key not in known]
    if not unknown:
        return config
    found = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
        hint = f"did you mean -o {close[0]}=...?" if close else f"its options: {', '.join(known)}"
        found.append(
            f"command-line options: sampler {config.sampler!r}: {key}: unknown option ({hint})"
        )
    kept = {k: v for k, v in config.sampler_options.items() if k not in unknown}
    rest = config.model_copy(update={"sampler_options": kept}).set_source(config.source)
    raise ConfigProblems(found, rest)
