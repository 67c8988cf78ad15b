"""`vidtt config`: each setting a pipeline would use, and where it came from, as `tox config`
shows: `default`, `FILE:LINE` (the config file's line that set it; `FILE` for TOML and JSON),
`environment (VIDTT_...)` or `flag (--...)`; then the limits in force, with theirs.

It takes `vidtt ask`'s `--config` and shared flags, and checks them as `ask` does.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import BaseModel

from vidtt import envs
from vidtt.cli.options import add_model_options, add_request_options, subcommand
from vidtt.cli.output import table
from vidtt.cli.settings import command_settings, config_path
from vidtt.config import ConfigSource, PipelineConfig, load_config
from vidtt.limits import Limits, over
from vidtt.settings.resolve import Settings
from vidtt.validation import Loc

DEFAULT = "default"
NESTED = ("generation", "segment_options", "watch", "sampler_options", "transcriber_options")
FLAGS = {  # the flag that sets a setting: argparse's dest, and the setting's place
    "model": ("--model", ("model",)),
    "backend": ("--backend", ("backend",)),
    "dtype": ("--dtype", ("dtype",)),
    "prefix_cache": ("--no-prefix-cache", ("prefix_cache",)),
    "prefix_cache_mb": ("--prefix-cache-mb", ("prefix_cache_mb",)),
    "formatter": ("--formatter", ("formatter",)),
    "max_visual_tokens": ("--max-visual-tokens", ("max_visual_tokens",)),
    "fit": ("--fit-context", ("fit",)),
    "sampler": ("--sampler", ("sampler",)),
    "max_side": ("--max-side", ("sampler_options", "max_side")),
    "size": ("--size", ("sampler_options", "size")),
    "start": ("--start", ("sampler_options", "start")),
    "end": ("--end", ("sampler_options", "end")),
    "every": ("--every", ("sampler_options", "every")),
    "fps": ("--fps", ("sampler_options", "fps")),
    "transcript": ("--transcript", ("transcript",)),
    "transcriber": ("--transcriber", ("transcriber",)),
    "max_transcript_tokens": ("--max-transcript-tokens", ("max_transcript_tokens",)),
    "language": ("--language", ("transcriber_options", "language")),
    "strategy": ("--long", ("strategy",)),
    "max_new_tokens": ("--max-new-tokens", ("generation", "max_new_tokens")),
    "temperature": ("--temperature", ("generation", "temperature")),
    "top_p": ("--top-p", ("generation", "top_p")),
    "seed": ("--seed", ("generation", "seed")),
    "stop": ("--stop", ("generation", "stop")),
}
OFF_FLAGS = ("prefix_cache",)  # flags that set False (unset they are None)
KEYED_FLAGS = {  # repeatable KEY=VALUE flags: dest, flag, the settings they go under
    "sampler_option": ("--sampler-option", "sampler_options"),
    "transcriber_option": ("--transcriber-option", "transcriber_options"),
    "segment_option": ("--segment-option", "segment_options"),
}
ENV_SETTINGS = {  # settings the environment gives when neither file nor flag does
    "backend": "VIDTT_BACKEND",
    "plugins": "VIDTT_PLUGINS",
    "disable_plugins": "VIDTT_DISABLE_PLUGINS",
}


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser = subcommand(sub, "config", "show each setting in force and where it came from", common)
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"config", "settings": {NAME: {"value", "source"}}, "limits": {...}}',
    )
    add_model_options(parser)
    add_request_options(parser)
    parser.set_defaults(func=cmd_config)
    return parser


def cmd_config(args: argparse.Namespace) -> int:
    report = config_report(args)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0


def config_report(args: argparse.Namespace) -> dict[str, Any]:
    """The settings and limits in force for these arguments, each with its source."""
    settings = command_settings(args)  # every problem `vidtt ask` would report, in one line
    path = config_path(args)
    base = load_config(path, check_names=False) if path else PipelineConfig()
    flags = flag_places(args, settings)
    found = {
        ".".join(map(str, loc)): {"value": value, "source": source(loc, base, flags)}
        for loc, value in leaves(settings)
    }
    for name, variable in ENV_SETTINGS.items():
        _environment(found, name, variable)
    return {
        "config": path,
        "settings": found,
        "limits": limit_sources(settings.config),
        "unknown_environment": envs.unknown(),
    }


def leaves(settings: Settings) -> list[tuple[Loc, Any]]:
    """Each setting's place and value (the sampler's options with its defaults), limits aside."""
    config = settings.config
    found: list[tuple[Loc, Any]] = []
    for name in PipelineConfig.model_fields:
        if name == "limits":
            continue
        value = _sampler_values(settings) if name == "sampler_options" else getattr(config, name)
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        if name in NESTED and value:
            found += [((name, key), _plain(item)) for key, item in value.items()]
        else:
            found.append(((name,), _plain(value)))
    return found


def _sampler_values(settings: Settings) -> dict[str, Any]:
    """The sampler's options, its defaults filled in (as given, if they do not validate)."""
    try:
        return settings.sampler_options().model_dump(mode="json")
    except Exception:  # a plugin's options model that cannot say: what the config gives
        return dict(settings.config.sampler_options)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def flag_places(args: argparse.Namespace, settings: Settings) -> dict[Loc, str]:
    """The flag that set each setting the command line set."""
    given = {dest: getattr(args, dest, None) for dest in FLAGS}
    places: dict[tuple[str | int, ...], str] = {
        FLAGS[d][1]: FLAGS[d][0]
        for d, v in given.items()
        if v not in (None, [], False) or (d in OFF_FLAGS and v is False)
    }
    if places.keys() & {("generation", "temperature"), ("generation", "top_p")}:
        places[("generation", "do_sample")] = (
            "--temperature" if given["temperature"] is not None else "--top-p"
        )
    if getattr(args, "frames", None) is not None:
        key = settings.sampler.frames_option()
        places[("sampler_options", key or "num_frames")] = "--frames"
    for rate in ("every", "fps"):  # a rate alone picks the interval sampler
        if given[rate] is not None and not given["sampler"]:
            places.setdefault(("sampler",), FLAGS[rate][0])
    for dest, (flag, field) in KEYED_FLAGS.items():
        for key, _ in getattr(args, dest, None) or []:
            places[(field, key)] = flag
    return places


def source(loc: Loc, base: PipelineConfig, flags: dict[Loc, str]) -> str:
    """Where the setting at `loc` came from: a flag, the config file (and line), or default."""
    if loc in flags:
        return f"flag ({flags[loc]})"
    if base.source is not None and _set_in(base, loc):
        return file_line(base.source, loc)
    return DEFAULT


def _set_in(config: PipelineConfig, loc: Loc) -> bool:
    """Whether the config file named the setting at `loc`."""
    if loc[0] not in config.model_fields_set:
        return False
    value = getattr(config, str(loc[0]))
    if len(loc) == 1:
        return True
    if isinstance(value, BaseModel):
        return loc[1] in value.model_fields_set
    return isinstance(value, dict) and loc[1] in value


def file_line(source: ConfigSource, loc: Loc) -> str:
    """`pipe.yaml:4`: the file and the line of the setting at `loc` (or its nearest parent's);
    the file alone where lines are not known (TOML, JSON)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in source.lines:
            return f"{source.path}:{source.lines[loc[:end]]}"
    return source.path


def _environment(found: dict[str, dict[str, Any]], name: str, variable: str) -> None:
    """The environment's value for setting `name` where it is what counts: `backend: auto`
    takes VIDTT_BACKEND; a plugin list the config leaves alone takes the variable's."""
    row = found[name]
    given = envs.get(variable)
    if given is None or (name == "backend" and (row["value"] != "auto" or given == "auto")):
        return
    if name != "backend" and row["source"] != DEFAULT:
        return
    found[name] = {"value": given, "source": f"environment ({variable})"}


def limit_sources(config: PipelineConfig) -> dict[str, dict[str, Any]]:
    """Each limit in force with its source: the config's `limits:` block, a `VIDTT_LIMIT_*`
    variable, or the default."""
    in_force = over(config.limits)
    from_env = envs.limit_values(Limits.model_fields)
    named = config.limits.model_fields_set if config.limits is not None else set()
    found = {}
    for name in Limits.model_fields:
        if name in named:
            where = file_line(config.source, ("limits", name)) if config.source else "config"
        elif name in from_env:
            where = f"environment ({envs.limit_name(name)})"
        else:
            where = DEFAULT
        found[name] = {"value": getattr(in_force, name), "source": where}
    return found


def render(report: dict[str, Any]) -> str:
    """The report as text: the settings, then the limits, each a table of name, value, source."""
    lines = [f"config: {report['config'] or 'none (defaults, environment and flags)'}", ""]
    for part in ("settings", "limits"):
        rows = [[name, _shown(row["value"]), row["source"]] for name, row in report[part].items()]
        lines += [table(rows, [part[:-1], "value", "source"]), ""]
    for name in report["unknown_environment"]:
        lines.append(f"note: {name} is set but vidtt reads no such variable (docs/environment.md)")
    return "\n".join(lines).rstrip()


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
