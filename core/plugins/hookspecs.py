"""Hook specifications of the `vidtt` pluggy project.

A plugin is any object (usually a module) with functions marked `@vidtt.hookimpl` and named after
one of these specs. Each hook receives `register(obj, *, name=None, override=False)`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

PROJECT = "vidtt"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Register = Callable[..., Any]


@hookspec
def register_samplers(register: Register) -> None:
    """Register `Sampler` instances (or classes, built with no arguments)."""


@hookspec
def register_formatters(register: Register) -> None:
    """Register `PromptFormatter` instances (or classes)."""


@hookspec
def register_backends(register: Register) -> None:
    """Register `Backend` instances (or classes)."""


@hookspec
def register_transcribers(register: Register) -> None:
    """Register `Transcriber` instances (or classes)."""


@hookspec
def register_embedders(register: Register) -> None:
    """Register `Embedder` instances (or classes)."""
