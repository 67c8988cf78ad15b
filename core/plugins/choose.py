"""Choosing plugins by name. A backend: an explicit name wins (and is an error if unavailable);
`auto` takes the available backend with the highest priority, never a silent fallback to the CPU.
A formatter: an explicit name must fit the model; `auto` takes the best one that does."""

from __future__ import annotations

from typing import Any

from vidtt import envs
from vidtt.errors import BackendUnavailableError, FormatterError, OptionsError
from vidtt.interfaces import Backend, PromptFormatter
from vidtt.plugins.registry import Registry
from vidtt.plugins.registry import default as default_registry

ENV = "VIDTT_BACKEND"


def parse_backend_name(name: str) -> tuple[str, int | None]:
    """`cuda:1` -> ("cuda", 1); `cpu` -> ("cpu", None)."""
    family, _, index = name.strip().partition(":")
    if not index:
        return family, None
    if not index.isdigit():
        raise OptionsError(f"bad backend {name!r}: write NAME or NAME:INDEX, e.g. cuda:1")
    return family, int(index)


def select_backend(name: str | None = None, registry: Registry | None = None) -> Backend:
    """The backend for `name` (None or `auto`: `VIDTT_BACKEND`, else the best available)."""
    registry = registry or default_registry
    if not name or name == "auto":
        name = envs.get(ENV)
    if name == "auto":
        return auto_backend(registry)
    family, index = parse_backend_name(name)
    backend = registry.backend(family)
    if index is not None and index != backend.index:
        backend = type(backend)(index=index)
    backend.require()
    return backend


def auto_backend(registry: Registry | None = None) -> Backend:
    """The available backend with the highest priority (ties: by name)."""
    registry = registry or default_registry
    entries = sorted(registry.entries("backends"), key=lambda e: (-e.obj.priority, e.name))
    for entry in entries:
        if entry.obj.is_available():
            return entry.obj  # type: ignore[no-any-return]
    reasons = "; ".join(f"{e.name}: {e.obj.why_unavailable()}" for e in entries)
    raise BackendUnavailableError(f"no backend is available ({reasons})")


def backend_report(registry: Registry | None = None) -> list[dict[str, Any]]:
    """What `vidtt backends --json` prints: every backend, and which one `auto` picks."""
    registry = registry or default_registry
    try:
        chosen: str | None = auto_backend(registry).name
    except BackendUnavailableError:
        chosen = None
    rows = []
    for entry in sorted(registry.entries("backends"), key=lambda e: (-e.obj.priority, e.name)):
        backend = entry.obj
        available = backend.is_available()
        rows.append(
            {
                "name": entry.name,
                "available": available,
                "reason": backend.why_unavailable(),
                "priority": backend.priority,
                "selected": entry.name == chosen,
                "device": backend.device if available else None,
                "device_count": _safe(backend.device_count, 0) if available else 0,
                "device_name": _safe(backend.device_name, None) if available else None,
                "dtypes": _safe(lambda b=backend: b.supported_dtypes, []) if available else [],
                "visible_devices_env": backend.visible_devices_env,
                "plugin": entry.plugin,
                "distribution": entry.distribution,
            }
        )
    return rows


def _safe(fn: Any, default: Any) -> Any:
    try:
        return fn()
    except Exception:
        return default


def choose_formatter(
    registry: Any, name: str, model_config: Any, processor: Any, model: str = "the model"
) -> PromptFormatter:
    """The formatter called `name`, or with "auto" the highest-priority one that fits."""
    if name != "auto":
        formatter: PromptFormatter = registry.formatter(name)
        reason = formatter.decline_reason(model_config, processor)
        if reason:
            raise FormatterError(f"formatter {formatter.name!r} cannot serve {model!r}: {reason}")
        return formatter
    tried = []
    for entry in sorted(registry.entries("formatters"), key=lambda e: (-e.obj.priority, e.name)):
        reason = entry.obj.decline_reason(model_config, processor)
        if reason is None:
            return entry.obj  # type: ignore[no-any-return]
        tried.append(f"{entry.name} ({reason})")
    raise FormatterError(
        f"no formatter fits {model!r}; tried: {'; '.join(tried) or 'none installed'}"
    )
