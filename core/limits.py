"""Resource limits for untrusted media, with safe defaults.

    vidtt.limits.current()                          # the limits in force
    with vidtt.limits.use(max_frames=64): ...       # tighter (or looser) for a block
    vidtt.limits.set_default(block_private_addresses=False)
    VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES=0 vidtt sample http://192.168.1.5/cam.mp4

Pipelines apply the `limits` of their config while they sample. Going past a limit raises
`LimitError` (a `VidttError`), never an out-of-memory kill or an endless wait.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vidtt import envs
from vidtt.errors import ConfigError
from vidtt.validation import describe


class Limits(BaseModel):
    """What one video may cost. All can be raised; none can be switched off by accident."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_download_bytes: int = Field(2 << 30, ge=1, description="bytes fetched from one URL")
    connect_timeout: float = Field(10.0, gt=0, description="seconds to connect to a URL")
    read_timeout: float = Field(30.0, gt=0, description="seconds any read may stall")
    download_seconds: float = Field(600.0, gt=0, description="seconds for a whole download")
    max_redirects: int = Field(5, ge=0, description="HTTP redirects followed, each re-checked")
    block_private_addresses: bool = Field(
        True, description="refuse URLs resolving to private, loopback or link-local addresses"
    )
    max_pixels: int = Field(8192 * 8192, ge=1, description="decoded pixels per frame")
    max_frames: int = Field(2048, ge=1, description="frames returned per video")
    max_clip_bytes: int = Field(
        2 << 30, ge=1, description="bytes the frames of one video may take (frames x w x h x 3)"
    )
    decode_seconds: float = Field(300.0, gt=0, description="seconds decoding one video")


def from_environment() -> Limits:
    """Defaults overridden by `VIDTT_LIMIT_<NAME>` variables, e.g. VIDTT_LIMIT_MAX_FRAMES=64."""
    try:
        return Limits.model_validate(envs.limit_values(Limits.model_fields))
    except ValidationError as exc:
        raise ConfigError(f"VIDTT_LIMIT_* environment variables: {describe(exc)}") from None


_scoped: contextvars.ContextVar[Limits | None] = contextvars.ContextVar(
    "vidtt_limits", default=None
)
_process_default: Limits | None = None


def process_default() -> Limits:
    """The process-wide limits: defaults, `VIDTT_LIMIT_*` variables, then `set_default`."""
    global _process_default
    if _process_default is None:
        _process_default = from_environment()
    return _process_default


def current() -> Limits:
    """The limits in force in this thread or task."""
    return _scoped.get() or process_default()


def over(given: Limits | None, base: Limits | None = None) -> Limits:
    """`given` laid over `base` (default: the limits in force): only the limits `given`
    names change, so a config's `limits:` block keeps the `VIDTT_LIMIT_*` values it does not
    name. A `Limits` made by `make` names them all."""
    base = base or current()
    if given is None:
        return base
    named = given.model_dump(include=given.model_fields_set)
    return base.model_copy(update=named) if named else base


def make(base: Limits | None = None, **changes: Any) -> Limits:
    """`base` (the limits it names, over the current ones) with `changes`, validated."""
    base = over(base)
    try:
        return Limits.model_validate({**base.model_dump(), **changes})
    except ValidationError as exc:
        raise ConfigError(f"limits: {describe(exc)}") from None


def set_default(**changes: Any) -> Limits:
    """Change the process-wide default limits."""
    global _process_default
    _process_default = make(process_default(), **changes)
    return _process_default


@contextmanager
def use(limits: Limits | None = None, **changes: Any) -> Iterator[Limits]:
    """Apply `limits` (the ones it names, over the current ones) with `changes` within the
    block."""
    chosen = over(limits)
    chosen = make(chosen, **changes) if changes else chosen
    token = _scoped.set(chosen)
    try:
        yield chosen
    finally:
        _scoped.reset(token)
