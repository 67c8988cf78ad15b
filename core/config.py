"""`PipelineConfig`: which model, backend, sampler and formatter a pipeline uses.

Loadable from a dict or a YAML, TOML or JSON file; `load_config` validates both the fields and
the plugin names they mention.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError, OptionsError, UnknownNameError
from .limits import Limits
from .registry import Registry
from .registry import default as default_registry
from .types import GenerationOptions
from .validation import describe

DEFAULT_MODEL = "llava-hf/llava-interleave-qwen-0.5b-hf"
DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}
Dtype = Literal["auto", "float32", "float16", "bfloat16"]


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
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    trust_remote_code: bool = False
    plugins: list[str] | None = Field(
        None, description="third-party plugins to load (None: all; []: none)"
    )
    disable_plugins: list[str] = Field(default_factory=list)
    limits: Limits | None = Field(
        None, description="resource limits while sampling (None: vidtt.limits.current())"
    )

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip().lower()
            return DTYPE_ALIASES.get(value, value)
        return value

    def registry(self) -> Registry:
        """The default registry, or a private one when this config sets plugin lists."""
        if self.plugins is None and not self.disable_plugins:
            return default_registry
        return Registry(allow=self.plugins, block=self.disable_plugins)

    def check_names(self, registry: Registry | None = None) -> None:
        """Raise `ConfigError` for an unknown sampler, formatter or backend, or bad options."""
        registry = registry or self.registry()
        try:
            sampler = registry.sampler(self.sampler)
            sampler.options(**self.sampler_options)
            if self.formatter != "auto":
                registry.formatter(self.formatter)
            if self.backend != "auto":
                registry.backend(self.backend)
        except (UnknownNameError, OptionsError) as exc:
            raise ConfigError(str(exc)) from None


def load_config(
    source: PipelineConfig | dict[str, Any] | str | Path, check_names: bool = True
) -> PipelineConfig:
    """Build and validate a config from an instance, a dict, or a YAML/TOML/JSON file path."""
    if isinstance(source, PipelineConfig):
        config = source
    elif isinstance(source, dict):
        config = _validate(source, "config")
    else:
        path = Path(source)
        config = _validate(read_config_file(path), str(path))
        if check_names:
            try:
                config.check_names()
            except ConfigError as exc:
                raise ConfigError(f"{path}: {exc}") from None
        return config
    if check_names:
        config.check_names()
    return config


def _validate(data: dict[str, Any], where: str) -> PipelineConfig:
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe(exc)}") from None


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML, TOML or JSON file into a dict, with errors naming the file."""
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"config file {path} {what}: pass the path of a .yaml, .toml or .json file"
        )
    suffix = path.suffix.lower()
    text = path.read_text(encoding="utf-8")
    try:
        if suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        elif suffix == ".toml":
            data = _toml_loads(text)
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(
                f"config file {path} has an unknown extension {suffix!r}: use .yaml, .toml or .json"
            )
    except ConfigError:
        raise
    except Exception as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{path}: cannot parse {suffix[1:].upper()}: {first_line}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of settings, not a {type(data).__name__}"
        )
    return data


def _toml_loads(text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads(text)
