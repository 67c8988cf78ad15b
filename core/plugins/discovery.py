"""Finding plugins: the `vidtt` entry points, which of them are wanted, and importing one.

Environment: `VIDTT_PLUGINS=a,b` loads only those third-party plugins (empty: none);
`VIDTT_DISABLE_PLUGINS=x,y` blocks plugins, built-ins included, by entry-point or distribution
name; `VIDTT_PLUGIN_TIMEOUT` (seconds, default 10) bounds a third-party import. A config's own
lists can only narrow what the environment allows: its blocks add to the environment's, its
allow list keeps the plugins both lists name.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from vidtt import envs

GROUP = "vidtt"
BUILTIN_DISTRIBUTION = "vidtt"

# imports that timed out in this process: they still run in their thread, and trying again
# would only wait again (key: distribution and entry-point value)
_timed_out: dict[tuple[str | None, str], str] = {}
_timed_out_lock = threading.Lock()


def env_list(name: str) -> list[str] | None:
    """The comma-separated names in environment variable `name`, or None when it is unset."""
    return envs.get(name)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class Selection:
    """Which plugins to load: `allow` (None: every third-party plugin) and `block`."""

    allow: frozenset[str] | None
    block: frozenset[str]

    @classmethod
    def of(
        cls,
        allow: Sequence[str] | None = None,
        block: Sequence[str] | None = None,
        use_environment: bool = True,
    ) -> Selection:
        """The given lists, narrowed by the environment's (never widened)."""
        blocked = set(block or ())
        allowed = None if allow is None else set(allow)
        if use_environment:
            blocked |= set(env_list("VIDTT_DISABLE_PLUGINS") or ())
            env_allow = env_list("VIDTT_PLUGINS")
            if env_allow is not None:
                allowed = set(env_allow) if allowed is None else allowed & set(env_allow)
        return cls(None if allowed is None else frozenset(allowed), frozenset(blocked))

    def blocks(self, ep: metadata.EntryPoint, dist: str | None) -> bool:
        return bool({ep.name, dist} & self.block)

    def wants(self, ep: metadata.EntryPoint, dist: str | None) -> bool:
        if self.blocks(ep, dist):
            return False
        return (
            dist == BUILTIN_DISTRIBUTION or self.allow is None or bool({ep.name, dist} & self.allow)
        )


def dist_of(ep: metadata.EntryPoint) -> tuple[str | None, str | None]:
    """The (name, version) of the distribution that declares `ep`."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def entry_points() -> list[metadata.EntryPoint]:
    """Built-ins first, then third parties by distribution and name, so overrides are stable."""
    seen: set[tuple[str, str, str | None]] = set()
    unique = []
    for ep in metadata.entry_points(group=GROUP):
        key = (ep.name, ep.value, dist_of(ep)[0])
        if key not in seen:  # the same distribution found twice on sys.path
            seen.add(key)
            unique.append(ep)

    def order(ep: metadata.EntryPoint) -> tuple[bool, str, str]:
        dist = dist_of(ep)[0] or ""
        return (dist != BUILTIN_DISTRIBUTION, dist.lower(), ep.name)

    return sorted(unique, key=order)


def import_plugin(ep: metadata.EntryPoint) -> Any:
    """Import a plugin: built-ins directly, third parties in a helper thread given at most
    `VIDTT_PLUGIN_TIMEOUT` seconds, so a plugin that hangs cannot hang vidtt. An import that
    timed out is not tried again in this process."""
    dist = dist_of(ep)[0]
    if dist == BUILTIN_DISTRIBUTION:
        return ep.load()
    key = (dist, ep.value)
    with _timed_out_lock:
        if key in _timed_out:
            raise TimeoutError(_timed_out[key] + " (earlier in this process; not tried again)")
    timeout = float(envs.get("VIDTT_PLUGIN_TIMEOUT"))
    outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            outcome["plugin"] = ep.load()
        except BaseException as exc:  # handed back to the loading thread
            outcome["error"] = exc

    thread = threading.Thread(target=load, name=f"vidtt-plugin-{ep.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        message = f"import did not finish within {timeout:g} s (VIDTT_PLUGIN_TIMEOUT)"
        with _timed_out_lock:
            _timed_out[key] = message
        raise TimeoutError(message)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["plugin"]
