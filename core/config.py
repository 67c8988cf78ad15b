"""`PipelineConfig`: which model, backend, sampler and formatter a pipeline uses.

Loadable from a dict or a YAML, TOML or JSON file. Every error names the file it came from (and,
for YAML, the line), and `check` finds every problem that needs no model in one go: plugin names,
sampler options, frame counts against the limits.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from vidtt import limits as limits_module
from vidtt.errors import ConfigError, OptionsError, UnknownNameError
from vidtt.limits import Limits
from vidtt.plugins.registry import Registry
from vidtt.plugins.registry import default as default_registry
from vidtt.types import (
    GenerationOptions,
    SegmentOptions,
    Strategy,
    TranscriptMode,
    transcript_mode,
)
from vidtt.types.watch import WatchOptions
from vidtt.validation import Loc, dotted, problems

DEFAULT_MODEL = "llava-hf/llava-interleave-qwen-0.5b-hf"
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
Dtype = Literal["auto", "float32", "float16", "bfloat16"]
MAX_CONFIG_BYTES = 1 << 20
MAX_YAML_NODES = 10_000  # values in a YAML config once its aliases are expanded


@dataclass
class ConfigSource:
    """Where a config came from, and the line of each setting (YAML files)."""

    path: str
    lines: dict[Loc, int] = field(default_factory=dict)

    def where(self, loc: Loc = ()) -> str:
        """`pipe.yaml, line 4` for the setting at `loc` (or its nearest parent with a line)."""
        for end in range(len(loc), 0, -1):
            if loc[:end] in self.lines:
                return f"{self.path}, line {self.lines[loc[:end]]}"
        return self.path


class PipelineConfig(BaseModel):
    """Everything that selects and tunes a pipeline."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(DEFAULT_MODEL, min_length=1, description="hub id or local folder")
    revision: str | None = Field(None, description="hub branch, tag or commit")
    dtype: Dtype = "auto"
    backend: str = Field("auto", min_length=1, description="'auto' or a backend name")
    device_map: Literal["auto"] | None = Field(
        None, description="'auto' spreads a model too big for one device (accelerate)"
    )
    sampler: str = Field("uniform", min_length=1)
    sampler_options: dict[str, Any] = Field(default_factory=dict)
    formatter: str = Field("auto", min_length=1, description="'auto' or a formatter name")
    max_visual_tokens: int | None = Field(
        None, ge=1, description="choose frames (and size) to fit this many visual tokens"
    )
    fit: Literal["context"] | None = Field(
        None, description="'context': choose frames that fit the context with the prompt"
    )
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    transcript: TranscriptMode = Field(
        "off", description="put what is said in the prompt: off, on (warn without audio), required"
    )
    transcriber: str = Field("whisper", min_length=1, description="the transcriber's name")
    transcriber_options: dict[str, Any] = Field(default_factory=dict)
    max_transcript_tokens: int | None = Field(
        None, ge=1, description="at most this many transcript tokens a request"
    )
    strategy: Strategy = Field(
        "direct", description="direct (frames of the whole range) or segments (long videos)"
    )
    segment_options: SegmentOptions = Field(
        default_factory=SegmentOptions, description="how the segments strategy cuts and notes"
    )
    watch: WatchOptions = Field(
        default_factory=WatchOptions, description="how live sources are watched (docs/live.md)"
    )
    prefix_cache: bool = Field(
        True, description="reuse the model state of a prompt's video start (docs/guide.md)"
    )
    prefix_cache_mb: int | None = Field(
        None, ge=1, description="the prefix cache's bound (None: 1/16 of the device's memory)"
    )
    trust_remote_code: bool = False
    plugins: list[str] | None = Field(
        None, description="third-party plugins to load (None: all; []: none)"
    )
    disable_plugins: list[str] = Field(default_factory=list)
    limits: Limits | None = Field(
        None, description="resource limits while sampling (None: vidtt.limits.current())"
    )
    _source: ConfigSource | None = PrivateAttr(None)

    @field_validator("transcript", mode="before")
    @classmethod
    def _transcript_mode(cls, value: Any) -> Any:
        return transcript_mode(value)

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return DTYPE_ALIASES.get(value, value)
        return value

    def __eq__(self, other: object) -> bool:
        """Equal settings make equal configs, wherever they were read from."""
        if not isinstance(other, PipelineConfig):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    @property
    def source(self) -> ConfigSource | None:
        """The file this config was read from, if any."""
        return self._source

    def set_source(self, source: ConfigSource | None) -> PipelineConfig:
        self._source = source
        return self

    def where(self, loc: Loc = ()) -> str:
        """What an error about the setting at `loc` should name: the file (and line), or
        `config` for a config built in code."""
        return self._source.where(loc) if self._source else "config"

    def registry(self) -> Registry:
        """The default registry, or a private one when this config sets plugin lists (they can
        narrow the environment's `VIDTT_PLUGINS`/`VIDTT_DISABLE_PLUGINS`, never widen them)."""
        if self.plugins is None and not self.disable_plugins:
            return default_registry
        return Registry(allow=self.plugins, block=self.disable_plugins)

    def check(self, registry: Registry | None = None) -> None:
        """Raise one `ConfigError` listing every problem found without a model: unknown
        sampler, formatter or backend, bad sampler options, more frames than the limits allow."""
        found = self.problems(registry or self.registry())
        if found:
            raise ConfigError(join_problems(found))

    def check_names(self, registry: Registry | None = None) -> None:
        """The older name of `check`."""
        self.check(registry)

    def problems(self, registry: Registry) -> list[str]:
        """Every problem `check` would report, each naming where it is."""
        found: list[str] = []
        sampler = None
        try:
            sampler = registry.sampler(self.sampler)
        except UnknownNameError as exc:
            found.append(f"{self.where(('sampler',))}: {exc}")
        if sampler is not None:
            found += self._option_problems(sampler)
        if self.formatter != "auto":
            found += self._name_problem(registry, "formatters", self.formatter, "formatter")
        named = {"transcriber", "transcriber_options"} & self.model_fields_set
        if self.transcript != "off" or named:
            found += self._transcriber_problems(registry)
        if self.backend != "auto":
            from vidtt.plugins.choose import parse_backend_name

            try:
                family, _ = parse_backend_name(self.backend)
            except OptionsError as exc:
                found.append(f"{self.where(('backend',))}: {exc}")
            else:
                found += self._name_problem(registry, "backends", family, "backend")
        return found

    def _name_problem(self, registry: Registry, family: str, name: str, key: str) -> list[str]:
        try:
            registry.entry(family, name)
        except UnknownNameError as exc:
            return [f"{self.where((key,))}: {exc}"]
        return []

    def _transcriber_problems(self, registry: Registry) -> list[str]:
        found = self._name_problem(registry, "transcribers", self.transcriber, "transcriber")
        if found:
            return found
        transcriber = registry.transcriber(self.transcriber)
        try:
            transcriber.options_model.model_validate(self.transcriber_options)
        except ValidationError as exc:
            return [
                f"{self.where(('transcriber_options', *loc))}: transcriber "
                f"{transcriber.name!r}: {dotted(loc)}: {text}"
                for loc, text in problems(exc)
            ]
        return []

    def _option_problems(self, sampler: Any) -> list[str]:
        limits = limits_module.over(self.limits)
        try:
            options = sampler.options_model.model_validate(self.sampler_options)
        except ValidationError as exc:
            return [
                f"{self.where(('sampler_options', *loc))}: "
                + (
                    (loc and self._over_limit(str(loc[0]), limits))
                    or f"sampler {sampler.name!r}: {dotted(loc)}: {text}"
                )
                for loc, text in problems(exc)
            ]
        for key in ("num_frames", "min_frames"):
            said = self._over_limit(key, limits, getattr(options, key, None))
            if said:  # (a count the sampler defaults to is over a lowered limit too)
                return [f"{self.where(('sampler_options', key))}: {said}"]
        return []

    def _over_limit(self, key: str, limits: Limits, count: Any = None) -> str:
        """What a frame count over the limit in force says (the sampler's own cap, if it is
        higher, is not the one to name); "" when `key` sets no count over it."""
        count = self.sampler_options.get(key) if count is None else count
        if key not in FRAME_COUNTS or isinstance(count, bool) or not isinstance(count, int):
            return ""
        if count <= limits.max_frames:
            return ""
        whose = "" if key in self.sampler_options else " (the sampler's default)"
        return (
            f"{key}={count}{whose} is over the limit of {limits.max_frames} frames; ask for "
            f"fewer (sampler_options {key}) or raise limits max_frames"
        )


FRAME_COUNTS = ("num_frames", "min_frames", "max_frames")


class ConfigProblems(ConfigError):
    """Settings that do not validate. `rest` holds the config of the other settings (None when
    none can be told apart), so that the problems they have too (an unknown sampler, say) are
    found in the same run: `every_problem`."""

    def __init__(self, found: list[str], rest: PipelineConfig | None = None) -> None:
        super().__init__(join_problems(found))
        self.found, self.rest = found, rest

    def every_problem(self, registry: Registry | None = None) -> list[str]:
        """These problems, then those of the settings that validate."""
        if self.rest is None:
            return list(self.found)
        return [*self.found, *self.rest.problems(registry or self.rest.registry())]

    def __reduce__(self) -> Any:  # sent between processes (Ray) as the plain error it reads as
        return ConfigError, (str(self),)


def join_problems(found: list[str]) -> str:
    """One line: the problem, or `N problems: a; b; c`."""
    return found[0] if len(found) == 1 else f"{len(found)} problems: " + "; ".join(found)


def load_config(
    source: PipelineConfig | dict[str, Any] | str | Path, check_names: bool = True
) -> PipelineConfig:
    """Build and validate a config from an instance, a dict, or a YAML/TOML/JSON file path.

    With `check_names`, every problem is reported at once: the settings that do not validate
    and those of the others (unknown names, bad sampler options, frame counts). Without, a
    `ConfigProblems` carries the settings that validate for the caller to check."""
    try:
        if isinstance(source, PipelineConfig):
            config = source
        elif isinstance(source, dict):
            config = validate(source)
        elif isinstance(source, (str, Path)):
            path = Path(source)
            data, lines = read_config(path)
            config = validate(data, ConfigSource(str(path), lines))
        else:
            raise ConfigError(
                f"a config is a PipelineConfig, a dict or a file path, not {type(source).__name__}"
            )
    except ConfigProblems as exc:
        if check_names:
            raise ConfigError(join_problems(exc.every_problem())) from None
        raise
    if check_names:
        config.check()
    return config


def validate(data: dict[str, Any], source: ConfigSource | None = None) -> PipelineConfig:
    """A `PipelineConfig` from `data`; errors name the file and line of each bad setting, and
    carry the config of the settings that validate (`ConfigProblems.rest`)."""
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        found = _setting_problems(exc, source)
        raise ConfigProblems(found, _valid_rest(data, exc, source)) from None
    return config.set_source(source)


def _valid_rest(
    data: dict[str, Any], error: ValidationError, source: ConfigSource | None
) -> PipelineConfig | None:
    """The config of the settings that validated (None if even they do not): so that an
    unknown sampler is reported along with a bad dtype. The sampler's options go with a bad
    sampler or limits (they would be checked against the wrong ones)."""
    bad = {loc[0] for loc, _ in problems(error) if loc}
    if "sampler" in bad or "limits" in bad:
        bad.add("sampler_options")
    rest = {key: value for key, value in data.items() if key not in bad}
    try:
        return PipelineConfig.model_validate(rest).set_source(source)
    except ValidationError:
        return None


def _setting_problems(error: ValidationError, source: ConfigSource | None) -> list[str]:
    found = []
    for loc, text in problems(error):
        if text == "unknown option" and len(loc) == 1:
            close = difflib.get_close_matches(str(loc[0]), PipelineConfig.model_fields, n=1)
            text = "unknown setting" + (f" (did you mean {close[0]!r}?)" if close else "")
        where = source.where(loc) if source else "config"
        found.append(f"{where}: {dotted(loc)}: {text}")
    return found


def read_config(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    """The settings in a YAML, TOML or JSON file, and (YAML) the line of each setting."""
    suffix = path.suffix.lower()
    text = _read_text(path)
    if suffix not in (".yaml", ".yml", ".toml", ".json"):
        raise ConfigError(
            f"config file {path} has an unknown extension {suffix!r}: use .yaml, .toml or .json"
        )
    lines: dict[Loc, int] = {}
    try:
        if suffix == ".toml":
            data: Any = _toml_loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            data, lines = _yaml_loads(text, str(path))
    except ConfigError:
        raise
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: cannot parse JSON: {exc.msg}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot parse {suffix[1:].upper()}: {first}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of settings, not a {type(data).__name__}"
        )
    return data, lines


def _read_text(path: Path) -> str:
    try:
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ConfigError(
                f"config file {path} {what}: pass the path of a .yaml, .toml or .json file"
            )
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"config file {path} is over {MAX_CONFIG_BYTES >> 20} MiB: is it really a config?"
            )
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None


def _yaml_loads(text: str, name: str) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML safely: aliases may not expand past `MAX_YAML_NODES` values, nor loop."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f", line {mark.line + 1}" if mark else ""
            problem = exc.problem or exc.context or "invalid YAML"
            raise ConfigError(f"{name}{line}: cannot parse YAML: {problem}") from None
        if node is None:
            return None, {}
        _check_expansion(node, name)
        lines: dict[Loc, int] = {}
        _note_lines(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _check_expansion(root: Any, name: str) -> None:
    """Count the values the document holds once aliases are expanded, without expanding them;
    refuse a document past `MAX_YAML_NODES` (an alias bomb) or one that contains itself."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(
                f"{name}, line {node.start_mark.line + 1}: a YAML alias refers to a value "
                "that contains it (a loop); write the setting out"
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        else:
            children = []
        for child in children:
            total += size(child)
            if total > MAX_YAML_NODES:
                raise ConfigError(
                    f"{name}, line {node.start_mark.line + 1}: the YAML aliases expand to over "
                    f"{MAX_YAML_NODES} values; refused (a config needs far fewer)"
                )
        active.discard(key)
        sizes[key] = total
        return total

    size(root)


def _note_lines(node: Any, loc: Loc, lines: dict[Loc, int], depth: int = 0) -> None:
    """Record the line of each mapping key and list item, a few levels deep."""
    import yaml

    if depth > 4:
        return
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*loc, key.value)
                lines[here] = key.start_mark.line + 1
                _note_lines(value, here, lines, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*loc, index)
            lines[here] = item.start_mark.line + 1
            _note_lines(item, here, lines, depth + 1)


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)
