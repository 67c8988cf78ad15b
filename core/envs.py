"""Every environment variable vidtt reads: one table (name, kind, default, meaning), each read
when it is asked for, never at import.

    from vidtt import envs
    envs.get("VIDTT_PLUGIN_TIMEOUT")    # 10.0, or the variable's value, parsed
    envs.VIDTT_BACKEND                  # the same, as an attribute (read now)
    envs.cache_dir()                    # VIDTT_CACHE_DIR, else the old VIDTT_CACHE, else ...

A family of variables (`VIDTT_LIMIT_<NAME>`) is one row whose name holds `<NAME>`.
docs/environment.md is made from this table (`markdown_table`) and held to it by
tests/settings/test_envs.py.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vidtt.errors import ConfigError, OptionsError

PREFIX = "VIDTT_"
TRUE = ("1", "true", "yes", "on")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$", re.I)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
DEFAULT_CACHE_MAX_BYTES = 2 << 30


@dataclass(frozen=True)
class Variable:
    """One environment variable (or a family: `<NAME>` in `name`) and what it means."""

    name: str
    kind: str  # text, names, switch, seconds, size, folder, limit, devices
    default: str  # as the docs write it
    meaning: str
    fallback: Any = None  # the value when unset (or blank)
    ray: bool = False  # sent with a `vidtt run --ray` job to its workers
    replaced_by: str = ""  # deprecated: the variable to set instead

    @property
    def prefix(self) -> str:
        """`VIDTT_LIMIT_` for the family `VIDTT_LIMIT_<NAME>`; "" for one variable."""
        return self.name.partition("<")[0] if "<" in self.name else ""

    def matches(self, name: str) -> bool:
        return name == self.name or bool(self.prefix and name.startswith(self.prefix))


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "VIDTT_BACKEND",
        "text",
        "auto",
        "the backend when the config or flags say `auto` (`cpu`, `cuda`, `cuda:1`, ...)",
        fallback="auto",
        ray=True,
    ),
    Variable(
        "VIDTT_PLUGINS",
        "names",
        "every plugin",
        "comma-separated third-party plugins to load, the others not (empty: none)",
        ray=True,
    ),
    Variable(
        "VIDTT_DISABLE_PLUGINS",
        "names",
        "none",
        "comma-separated plugins not to load, built-ins included (entry-point or distribution)",
        ray=True,
    ),
    Variable(
        "VIDTT_STRICT_PLUGINS",
        "switch",
        "off",
        "`1`, `true`, `yes` or `on`: a plugin that fails to load is an error, not a warning",
        fallback=False,
        ray=True,
    ),
    Variable(
        "VIDTT_PLUGIN_TIMEOUT",
        "seconds",
        "10",
        "seconds a third-party plugin's import may take",
        fallback=10.0,
        ray=True,
    ),
    Variable(
        "VIDTT_LIMIT_<NAME>",
        "limit",
        "see [security.md](security.md)",
        "a resource limit, one per field of `vidtt.limits.Limits` "
        "(`VIDTT_LIMIT_MAX_FRAMES=64`); a config's `limits:` lies over it",
        ray=True,
    ),
    Variable(
        "VIDTT_CACHE_DIR",
        "folder",
        "`$XDG_CACHE_HOME/vidtt`, else `~/.cache/vidtt`",
        "the cache folder: frames, segment notes, `vidtt demo`'s video and model",
    ),
    Variable(
        "VIDTT_CACHE",
        "folder",
        "unset",
        "the old name of VIDTT_CACHE_DIR: still read when that is unset, with a warning",
        replaced_by="VIDTT_CACHE_DIR",
    ),
    Variable(
        "VIDTT_CACHE_MAX_BYTES",
        "size",
        "2G",
        "the cache folder's size limit, in bytes or as `2G`, `500M`, `64K` (units of 1024)",
        fallback=DEFAULT_CACHE_MAX_BYTES,
    ),
    Variable(
        "VIDTT_LIBRARY_DIR",
        "folder",
        "`$VIDTT_CACHE_DIR/libraries`",
        "where a video library named by `vidtt index` / `vidtt search --library NAME` lives",
        ray=True,
    ),
    Variable(
        "VIDTT_API_KEY",
        "text",
        "none",
        "the key `vidtt serve` asks clients for when `--api-key` is not given",
    ),
    Variable(
        "XDG_CACHE_HOME",
        "folder",
        "`~/.cache`",
        "where the cache folder goes (as `vidtt/`) when VIDTT_CACHE_DIR is unset",
    ),
    Variable(
        "CUDA_VISIBLE_DEVICES",
        "devices",
        "every device",
        "the devices the `cuda` backend sees (read, never set)",
    ),
    Variable("ZE_AFFINITY_MASK", "devices", "every device", "the devices the `xpu` backend sees"),
    Variable(
        "ASCEND_RT_VISIBLE_DEVICES",
        "devices",
        "every device",
        "the devices the `npu` backend sees",
    ),
)


def variable(name: str) -> Variable:
    """The table's row for `name` (a family's row for one of its members)."""
    for row in VARIABLES:
        if row.matches(name):
            return row
    raise KeyError(f"{name} is not declared in vidtt.envs.VARIABLES")


def raw(name: str) -> str | None:
    """The text of declared variable `name`, or None when it is unset."""
    variable(name)
    return os.environ.get(name)


def get(name: str) -> Any:
    """The value of declared variable `name`, parsed by its kind; unset (or blank, but for a
    list of names, where blank means none): the row's `fallback`."""
    row = variable(name)
    value = os.environ.get(name)
    if value is None or (not value.strip() and row.kind not in ("names", "devices")):
        return row.fallback
    return PARSERS[row.kind](name, value)


def __getattr__(name: str) -> Any:
    """`envs.VIDTT_BACKEND`: the variable's value, read now."""
    if name.isupper():
        try:
            return get(name)
        except KeyError:
            pass
    raise AttributeError(f"module 'vidtt.envs' has no attribute {name!r}")


# -- parsing, by kind (each given a value that is set and not blank) -------------------------
def _names(name: str, value: str) -> list[str]:
    """Comma-separated names (blank: none)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def _seconds(name: str, value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"{name} must be a number of seconds above 0, not {value!r}")
    return seconds


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "text": lambda name, value: value.strip(),
    "names": _names,
    "switch": lambda name, value: value.strip().lower() in TRUE,
    "seconds": _seconds,
    "size": lambda name, value: parse_size(value, name),
    "folder": lambda name, value: Path(value).expanduser(),
    "devices": _names,
    "limit": lambda name, value: value,
}


def parse_size(text: str, name: str = "VIDTT_CACHE_MAX_BYTES") -> int:
    """Bytes from `2147483648`, `2G`, `500M`, `1.5GiB`, `64k` (units of 1024)."""
    found = _SIZE.match(str(text))
    if not found:
        raise OptionsError(f"{name} must be bytes or a size such as 2G or 500M, not {text!r}")
    number, unit = found.group(1), found.group(2).lower()
    return int(float(number) * _UNITS[unit])


# -- what the code asks for --------------------------------------------------------------------
_warned: set[str] = set()


def cache_dir() -> Path:
    """`$VIDTT_CACHE_DIR`, else the old `$VIDTT_CACHE` (a one-time warning: set
    VIDTT_CACHE_DIR), else `$XDG_CACHE_HOME/vidtt`, else `~/.cache/vidtt`. With both set,
    VIDTT_CACHE_DIR is used and the old one named once as ignored."""
    given, old = get("VIDTT_CACHE_DIR"), get("VIDTT_CACHE")
    if old is not None:
        if given is not None:
            _warn_once(
                "VIDTT_CACHE is no longer read and VIDTT_CACHE_DIR is set: unset VIDTT_CACHE"
            )
        else:
            _warn_once(
                f"VIDTT_CACHE is deprecated: set VIDTT_CACHE_DIR={old} instead (used this time)"
            )
            return old  # type: ignore[no-any-return]
    if given is not None:
        return given  # type: ignore[no-any-return]
    xdg = get("XDG_CACHE_HOME")
    return (xdg / "vidtt") if xdg is not None else Path.home() / ".cache" / "vidtt"


def _warn_once(message: str) -> None:
    """`message` as a FutureWarning (one line on the command line), once a process."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, FutureWarning, stacklevel=3)


def limit_values(fields: Iterable[str]) -> dict[str, str]:
    """The `VIDTT_LIMIT_<FIELD>` variables set, as text, keyed by field."""
    given = {name: raw(limit_name(name)) for name in fields}
    return {name: value for name, value in given.items() if value is not None}


def limit_name(field: str) -> str:
    """`max_frames` -> `VIDTT_LIMIT_MAX_FRAMES`."""
    return f"{variable('VIDTT_LIMIT_<NAME>').prefix}{field.upper()}"


def forwarded() -> dict[str, str]:
    """The variables set here that a Ray job's workers get too (never credentials)."""
    rows = [row for row in VARIABLES if row.ray]
    return {
        name: value for name, value in os.environ.items() if any(row.matches(name) for row in rows)
    }


def unknown() -> list[str]:
    """`VIDTT_*` variables set here that vidtt does not read (a misspelling, say)."""
    return sorted(
        name
        for name in os.environ
        if name.startswith(PREFIX) and not any(row.matches(name) for row in VARIABLES)
    )


def markdown_table() -> str:
    """The table as docs/environment.md shows it."""
    lines = [
        "| variable | kind | default | meaning | in a Ray job |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in VARIABLES:
        ray = "yes" if row.ray else "no"
        lines.append(f"| `{row.name}` | {row.kind} | {row.default} | {row.meaning} | {ray} |")
    return "\n".join(lines)
