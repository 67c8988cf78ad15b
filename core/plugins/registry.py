"""The registry: which samplers, formatters, backends, transcribers and embedders exist, and
from where.

Plugins are found through the `vidtt` entry-point group, built-ins included (see
`vidtt.plugins.discovery`), and loaded one by one on first use into a pluggy `PluginManager`.
A plugin that fails to import, whose hook raises, that registers something invalid or that
defines a hook no spec knows (a misspelling) is recorded and skipped with one warning;
`VIDTT_STRICT_PLUGINS=1` makes that raise, and leaves the registry unloaded so the next use
raises again.
"""

from __future__ import annotations

import difflib
import inspect
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar

import pluggy

from vidtt import envs
from vidtt.errors import PluginError, RegistryError, UnknownNameError
from vidtt.interfaces import Backend, Embedder, PromptFormatter, Sampler, Transcriber
from vidtt.plugins import hookspecs
from vidtt.plugins.discovery import Selection, dist_of, entry_points, import_plugin

API_PLUGIN = "<api>"
FAMILIES: dict[str, type] = {
    "samplers": Sampler,
    "formatters": PromptFormatter,
    "backends": Backend,
    "transcribers": Transcriber,
    "embedders": Embedder,
}
HOOKS = {
    "samplers": "register_samplers",
    "formatters": "register_formatters",
    "backends": "register_backends",
    "transcribers": "register_transcribers",
    "embedders": "register_embedders",
}
T = TypeVar("T")


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to load."""


@dataclass(frozen=True)
class Entry:
    """One registered component and where it came from."""

    family: str
    name: str
    obj: Any
    plugin: str
    distribution: str | None = None
    version: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
            "description": getattr(self.obj, "description", "") or "",
        }


@dataclass
class PluginInfo:
    """A plugin the registry saw: what it registered, or why it was skipped."""

    name: str
    distribution: str | None
    version: str | None
    registered: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "registered": self.registered,
            "error": self.error,
        }


def _family_of(obj: Any) -> str:
    for family, base in FAMILIES.items():
        if isinstance(obj, base):
            return family
    raise RegistryError(
        f"cannot register {obj!r}: expected a vidtt Sampler, PromptFormatter, Backend, "
        "Transcriber or Embedder (an instance, or a class that builds with no arguments)"
    )


def _instantiate(obj: Any) -> Any:
    if inspect.isclass(obj):
        if not issubclass(obj, tuple(FAMILIES.values())):
            _family_of(obj)  # raises with the standard message
        try:
            return obj()
        except Exception as exc:
            raise RegistryError(f"cannot build {obj.__name__}() to register it: {exc}") from exc
    return obj


def _component_name(obj: Any, name: str | None) -> str:
    name = name or getattr(obj, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise RegistryError(f"cannot register {obj!r}: it has no name (set a `name` attribute)")
    return name


class Registry:
    """Samplers, formatters, backends, transcribers and embedders by name, loaded from plugins on
    first use."""

    def __init__(
        self,
        allow: Sequence[str] | None = None,
        block: Sequence[str] | None = None,
        strict: bool | None = None,
        use_environment: bool = True,
    ) -> None:
        self._allow = list(allow) if allow is not None else None
        self._block = list(block) if block is not None else None
        self._strict = strict
        self._use_environment = use_environment
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._stacks: dict[str, dict[str, list[Entry]]] = {f: {} for f in FAMILIES}
        self._plugins: dict[str, PluginInfo] = {}
        self._skipped: list[PluginInfo] = []  # failures whose name another plugin holds
        self._loaded = False
        self._loading = False

    @property
    def strict(self) -> bool:
        if self._strict is not None:
            return self._strict
        return bool(envs.get("VIDTT_STRICT_PLUGINS"))

    # -- loading ----------------------------------------------------------------------------
    def load(self) -> None:
        """Load every wanted entry point once (later calls do nothing). In strict mode a
        failure raises and leaves the registry unloaded, so the next call raises again."""
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            selection = Selection.of(self._allow, self._block, self._use_environment)
            try:
                for name in selection.block:
                    self._pm.set_blocked(name)
                for ep in entry_points():
                    dist, version = dist_of(ep)
                    if selection.blocks(ep, dist):
                        self._pm.set_blocked(ep.name)
                    elif selection.wants(ep, dist):
                        self._load_entry_point(ep, dist, version)
            except BaseException:
                self._reset()
                raise
            self._loading = False
            self._loaded = True

    def reload(self) -> None:
        """Forget everything and load the entry points again (e.g. after changing settings)."""
        with self._lock:
            self._reset()
        self.load()

    def _load_entry_point(
        self, ep: metadata.EntryPoint, dist: str | None, version: str | None
    ) -> None:
        info = PluginInfo(ep.name, dist, version)
        if ep.name in self._plugins:
            other = self._plugins[ep.name]
            self._fail(
                info,
                f"plugin name {ep.name!r} is already used by distribution {other.distribution!r}",
            )
            return
        self._plugins[ep.name] = info
        try:
            plugin = import_plugin(ep)
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
            return
        self._add(plugin, info)

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        try:
            self._install(plugin, info)
        except Exception as exc:
            self._fail(
                info, str(exc) if isinstance(exc, RegistryError) else f"{type(exc).__name__}: {exc}"
            )

    def _install(self, plugin: Any, info: PluginInfo) -> None:
        """Register `plugin` with pluggy, run its hooks and commit what they registered, or
        undo everything and raise."""
        try:
            if self._pm.register(plugin, name=info.name) is None:
                raise RegistryError(f"plugin {info.name!r} is blocked (VIDTT_DISABLE_PLUGINS)")
        except pluggy.PluginValidationError as exc:
            raise RegistryError(f"invalid hook: {exc}") from None
        try:
            self._check_hooks(plugin)
            staged = self._call_hooks(plugin, info)
            self._commit(staged)
        except BaseException:
            self._pm.unregister(plugin)
            raise
        for entry, _ in staged:
            info.registered.setdefault(entry.family, []).append(entry.name)

    def _check_hooks(self, plugin: Any) -> None:
        """Refuse a plugin with a hook no spec knows (pluggy's `check_pending`), or none."""
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError:
            unknown = [
                name
                for name, caller in vars(self._pm.hook).items()
                if isinstance(caller, pluggy.HookCaller)
                and not caller.has_spec()
                and any(impl.plugin is plugin for impl in caller.get_hookimpls())
            ]
            hints = [
                f"{name!r}"
                + "".join(
                    f" (did you mean {m!r}?)"
                    for m in difflib.get_close_matches(name, HOOKS.values(), 1)
                )
                for name in unknown
            ]
            raise RegistryError(
                f"unknown hook {', '.join(hints)}; vidtt's hooks are {', '.join(HOOKS.values())}"
            ) from None
        if not self._pm.get_hookcallers(plugin):
            raise RegistryError(
                f"it defines no vidtt hook; mark {'/'.join(HOOKS.values())} with @vidtt.hookimpl"
            )

    def _call_hooks(self, plugin: Any, info: PluginInfo) -> list[tuple[Entry, bool]]:
        staged: list[tuple[Entry, bool]] = []
        for family, hook_name in HOOKS.items():
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                if impl.plugin is not plugin:
                    continue
                register = self._stager(staged, family, info)
                try:
                    impl.function(**{arg: register for arg in impl.argnames})
                except RegistryError:
                    raise
                except Exception as exc:
                    raise PluginError(
                        f"hook {hook_name} raised {type(exc).__name__}: {exc}"
                    ) from exc
        return staged

    def _stager(
        self, staged: list[tuple[Entry, bool]], family: str, info: PluginInfo
    ) -> Callable[..., Any]:
        def register(obj: Any, *, name: str | None = None, override: bool = False) -> None:
            entry = self._make_entry(obj, name, info.name, info.distribution, info.version)
            if entry.family != family:
                raise RegistryError(
                    f"{HOOKS[family]} registered a {entry.family[:-1]} ({entry.name!r}); "
                    f"register it from {HOOKS[entry.family]}"
                )
            staged.append((entry, override))

        return register

    def _make_entry(
        self, obj: Any, name: str | None, plugin: str, dist: str | None, version: str | None
    ) -> Entry:
        obj = _instantiate(obj)
        family = _family_of(obj)
        return Entry(family, _component_name(obj, name), obj, plugin, dist, version)

    def _commit(self, staged: list[tuple[Entry, bool]]) -> None:
        seen: set[tuple[str, str]] = set()
        for entry, override in staged:
            key = (entry.family, entry.name)
            if key in seen:
                raise RegistryError(
                    f"plugin {entry.plugin!r} registers {entry.family[:-1]} {entry.name!r} twice"
                )
            seen.add(key)
            self._check_duplicate(entry, override)
        for entry, _ in staged:
            self._stacks[entry.family].setdefault(entry.name, []).append(entry)

    def _check_duplicate(self, entry: Entry, override: bool) -> None:
        stack = self._stacks[entry.family].get(entry.name)
        if stack and not override:
            old = stack[-1]
            raise RegistryError(
                f"{entry.family[:-1]} {entry.name!r} is registered twice: by plugin "
                f"{old.plugin!r} ({_dist_label(old.distribution)}) and by plugin "
                f"{entry.plugin!r} ({_dist_label(entry.distribution)}); remove one, or "
                "register with override=True to replace it"
            )

    def _fail(self, info: PluginInfo, message: str) -> None:
        info.error = message
        if self._plugins.setdefault(info.name, info) is not info:
            self._skipped.append(info)
        text = f"vidtt plugin {info.name!r} ({_dist_label(info.distribution)}) skipped: {message}"
        if self.strict:
            raise PluginError(text)
        warnings.warn(
            text + " (set VIDTT_STRICT_PLUGINS=1 to raise)", PluginLoadWarning, stacklevel=4
        )

    # -- queries ----------------------------------------------------------------------------
    def entries(self, family: str) -> list[Entry]:
        """The active entry of each registered name in `family`, sorted by name."""
        self._check_family(family)
        self.load()
        return [stack[-1] for _, stack in sorted(self._stacks[family].items()) if stack]

    def names(self, family: str) -> list[str]:
        return [entry.name for entry in self.entries(family)]

    def entry(self, family: str, name: str) -> Entry:
        self._check_family(family)
        self.load()
        stack = self._stacks[family].get(name)
        if not stack:
            known = ", ".join(self.names(family)) or "none"
            raise UnknownNameError(
                f"unknown {family[:-1]} {name!r}; known {family}: {known} "
                "(run `vidtt plugins` to see what is installed)"
            )
        return stack[-1]

    def get(self, family: str, name: str) -> Any:
        return self.entry(family, name).obj

    def sampler(self, name: str) -> Sampler:
        return self.get("samplers", name)  # type: ignore[no-any-return]

    def formatter(self, name: str) -> PromptFormatter:
        return self.get("formatters", name)  # type: ignore[no-any-return]

    def backend(self, name: str) -> Backend:
        return self.get("backends", name)  # type: ignore[no-any-return]

    def transcriber(self, name: str) -> Transcriber:
        return self.get("transcribers", name)  # type: ignore[no-any-return]

    def embedder(self, name: str) -> Embedder:
        return self.get("embedders", name)  # type: ignore[no-any-return]

    def plugins(self) -> list[PluginInfo]:
        """Every plugin seen, loaded or skipped, in load order."""
        self.load()
        return [*self._plugins.values(), *self._skipped]

    def errors(self) -> list[PluginInfo]:
        return [info for info in self.plugins() if info.error]

    @staticmethod
    def _check_family(family: str) -> None:
        if family not in FAMILIES:
            raise RegistryError(f"unknown family {family!r}; use one of {', '.join(FAMILIES)}")

    # -- programmatic registration ----------------------------------------------------------
    def register(
        self, obj: Any, *, name: str | None = None, override: bool = False, plugin: str = API_PLUGIN
    ) -> Entry:
        """Register one sampler, formatter or backend object; return its entry."""
        self.load()
        with self._lock:
            entry = self._make_entry(obj, name, plugin, None, None)
            self._check_duplicate(entry, override)
            self._stacks[entry.family].setdefault(entry.name, []).append(entry)
            info = self._plugins.setdefault(plugin, PluginInfo(plugin, None, None))
            info.registered.setdefault(entry.family, []).append(entry.name)
            return entry

    def unregister(self, family: str, name: str) -> Entry:
        """Remove the active entry for `name`; one it had overridden becomes active again."""
        entry = self.entry(family, name)
        with self._lock:
            self._remove(entry)
        return entry

    def _remove(self, entry: Entry) -> None:
        stack = self._stacks[entry.family].get(entry.name, [])
        if entry in stack:
            stack.remove(entry)
        if not stack:
            self._stacks[entry.family].pop(entry.name, None)
        info = self._plugins.get(entry.plugin)
        if info and entry.name in info.registered.get(entry.family, []):
            info.registered[entry.family].remove(entry.name)

    def add_plugin(self, plugin: Any, name: str | None = None) -> str:
        """Register a pluggy plugin object (module or instance with hookimpls) and run its hooks.

        Unlike entry points, a failure here always raises.
        """
        self.load()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        with self._lock:
            if name in self._plugins:
                raise RegistryError(f"a plugin named {name!r} is already registered")
            info = PluginInfo(name, None, None)
            self._install(plugin, info)
            self._plugins[name] = info
        return name

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and everything it registered."""
        self.load()
        with self._lock:
            if name not in self._plugins:
                raise UnknownNameError(
                    f"no plugin named {name!r}; known plugins: {', '.join(self._plugins) or 'none'}"
                )
            for stacks in self._stacks.values():
                for stack in list(stacks.values()):
                    for entry in [e for e in stack if e.plugin == name]:
                        self._remove(entry)
            plugin = self._pm.get_plugin(name)
            if plugin is not None:
                self._pm.unregister(plugin)
            del self._plugins[name]

    @contextmanager
    def temporary(self, *items: Any, override: bool = False) -> Iterator[list[Entry]]:
        """Register components or plugin objects for the block, and remove them after."""
        entries: list[Entry] = []
        plugin_names: list[str] = []
        try:
            for item in items:
                if _is_component(item):
                    entries.append(self.register(item, override=override))
                else:
                    plugin_names.append(self.add_plugin(item))
            yield entries
        finally:
            for entry in reversed(entries):
                with self._lock:
                    self._remove(entry)
            for name in reversed(plugin_names):
                self.remove_plugin(name)


def _is_component(item: Any) -> bool:
    bases = tuple(FAMILIES.values())
    return isinstance(item, bases) or (inspect.isclass(item) and issubclass(item, bases))


def _dist_label(dist: str | None) -> str:
    return f"distribution {dist!r}" if dist else "registered in code"


# -- the default registry, shared by the process --------------------------------------------
default = Registry()
entries = default.entries
names = default.names
entry = default.entry
get = default.get
sampler = default.sampler
formatter = default.formatter
backend = default.backend
transcriber = default.transcriber
embedder = default.embedder
plugins = default.plugins
errors = default.errors
register = default.register
unregister = default.unregister
add_plugin = default.add_plugin
remove_plugin = default.remove_plugin
temporary = default.temporary
reload = default.reload
load = default.load
