"""The plugin system: entry points, failures, duplicates, overrides, allow/block lists."""

from __future__ import annotations

import sys
import warnings

import pytest

import vidtt
from vidtt import registry as default_registry
from vidtt.plugins.registry import PluginLoadWarning, Registry

BUILTIN_SAMPLERS = {"uniform", "keyframe", "interval"}
BUILTIN_BACKENDS = {"cpu", "cuda", "xpu", "mps", "npu"}

GOOD_PLUGIN = """
import vidtt
from vidtt.samplers.uniform import UniformSampler

class Every(UniformSampler):
    name = "{name}"

@vidtt.hookimpl
def register_samplers(register):
    register(Every(){extra})
"""


def quiet_registry(**kwargs) -> Registry:
    return Registry(use_environment=False, **kwargs)


def test_builtins_load_through_entry_points() -> None:
    reg = quiet_registry()
    assert set(reg.names("samplers")) >= BUILTIN_SAMPLERS
    assert set(reg.names("backends")) >= BUILTIN_BACKENDS
    entry = reg.entry("samplers", "uniform")
    assert (entry.plugin, entry.distribution) == ("uniform", "vidtt")
    assert entry.version == vidtt.__version__
    assert isinstance(reg.sampler("uniform"), vidtt.Sampler)


def test_loading_is_lazy_and_happens_once(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = quiet_registry()
    assert not reg._loaded
    calls = []
    original = reg._load_entry_point
    monkeypatch.setattr(reg, "_load_entry_point", lambda *a: calls.append(a) or original(*a))
    reg.names("samplers")
    reg.names("backends")
    reg.plugins()
    assert len(calls) == len({c[0].name for c in calls}) >= 8


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(vidtt.UnknownNameError, match="unknown sampler 'nope'.*uniform"):
        quiet_registry().sampler("nope")


def test_plugin_that_fails_to_import_is_skipped_with_one_warning(plugin_dist) -> None:
    plugin_dist("broken-dist", "broken_mod", "raise RuntimeError('boom at import')")
    reg = quiet_registry()
    with pytest.warns(PluginLoadWarning, match="broken_mod.*broken-dist.*boom at import") as rec:
        names = reg.names("samplers")
    assert len([w for w in rec if issubclass(w.category, PluginLoadWarning)]) == 1
    assert set(names) >= BUILTIN_SAMPLERS
    [error] = reg.errors()
    assert (error.name, error.distribution, error.version) == ("broken_mod", "broken-dist", "1.0")
    assert "RuntimeError: boom at import" in error.error


def test_plugin_whose_hook_raises_is_skipped_and_registers_nothing(plugin_dist) -> None:
    plugin_dist(
        "half-dist",
        "half_mod",
        """
        import vidtt
        from vidtt.samplers.uniform import UniformSampler

        class Half(UniformSampler):
            name = "half"

        @vidtt.hookimpl
        def register_samplers(register):
            register(Half())
            raise ValueError("hook failed")
    """,
    )
    reg = quiet_registry()
    with pytest.warns(PluginLoadWarning, match="hook register_samplers raised ValueError"):
        assert "half" not in reg.names("samplers")
    assert reg.errors()[0].registered == {}


def test_garbage_registration_is_refused(plugin_dist) -> None:
    plugin_dist(
        "junk-dist",
        "junk_mod",
        """
        import vidtt

        @vidtt.hookimpl
        def register_backends(register):
            register(42)
    """,
    )
    reg = quiet_registry()
    with pytest.warns(PluginLoadWarning, match="cannot register 42"):
        assert "cpu" in reg.names("backends")


def test_wrong_family_registration_is_refused(plugin_dist) -> None:
    plugin_dist(
        "mixed-dist",
        "mixed_mod",
        """
        import vidtt
        from vidtt.backends.cpu import CpuBackend

        @vidtt.hookimpl
        def register_samplers(register):
            register(CpuBackend(), name="sneaky")
    """,
    )
    with pytest.warns(PluginLoadWarning, match="register it from register_backends"):
        quiet_registry().names("samplers")


def test_strict_mode_raises(plugin_dist, monkeypatch: pytest.MonkeyPatch) -> None:
    plugin_dist("broken-dist", "broken_mod", "import not_a_module_anywhere")
    monkeypatch.setenv("VIDTT_STRICT_PLUGINS", "1")
    with pytest.raises(vidtt.PluginError, match="broken_mod.*ModuleNotFoundError"):
        Registry().names("samplers")


def test_duplicate_name_names_both_plugins_and_distributions(plugin_dist) -> None:
    plugin_dist("clash-dist", "clash_mod", GOOD_PLUGIN.format(name="uniform", extra=""))
    reg = quiet_registry()
    with pytest.warns(PluginLoadWarning) as rec:
        entry = reg.entry("samplers", "uniform")
    message = str(rec[0].message)
    for part in (
        "'uniform'",
        "distribution 'vidtt'",
        "'clash_mod'",
        "'clash-dist'",
        "override=True",
    ):
        assert part in message
    assert entry.distribution == "vidtt"


def test_override_replaces_a_builtin(plugin_dist) -> None:
    plugin_dist(
        "better-dist", "better_mod", GOOD_PLUGIN.format(name="uniform", extra=", override=True")
    )
    reg = quiet_registry()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entry = reg.entry("samplers", "uniform")
    assert (entry.plugin, entry.distribution) == ("better_mod", "better-dist")
    reg.remove_plugin("better_mod")
    assert reg.entry("samplers", "uniform").distribution == "vidtt"


def test_allow_list_loads_only_named_third_party_plugins(plugin_dist) -> None:
    plugin_dist("one-dist", "one_mod", GOOD_PLUGIN.format(name="one", extra=""))
    plugin_dist("two-dist", "two_mod", GOOD_PLUGIN.format(name="two", extra=""))
    names = set(quiet_registry(allow=["one-dist"]).names("samplers"))
    assert {"one", *BUILTIN_SAMPLERS} <= names and "two" not in names
    names = set(quiet_registry(allow=[]).names("samplers"))
    assert "one" not in names and "two" not in names and names >= BUILTIN_SAMPLERS


def test_environment_allow_and_block_lists(plugin_dist, monkeypatch) -> None:
    plugin_dist("one-dist", "one_mod", GOOD_PLUGIN.format(name="one", extra=""))
    monkeypatch.setenv("VIDTT_PLUGINS", "")
    assert "one" not in Registry().names("samplers")
    monkeypatch.setenv("VIDTT_PLUGINS", "one_mod")
    assert "one" in Registry().names("samplers")
    monkeypatch.delenv("VIDTT_PLUGINS")
    monkeypatch.setenv("VIDTT_DISABLE_PLUGINS", "one_mod, keyframe")
    names = Registry().names("samplers")
    assert "one" not in names and "keyframe" not in names and "uniform" in names


def test_programmatic_register_and_unregister() -> None:
    from vidtt.samplers.uniform import UniformSampler

    reg = quiet_registry()

    class Mine(UniformSampler):
        name = "mine"

    entry = reg.register(Mine)
    assert entry.plugin == "<api>" and reg.sampler("mine").name == "mine"
    with pytest.raises(vidtt.RegistryError, match="registered twice"):
        reg.register(Mine())
    reg.unregister("samplers", "mine")
    assert "mine" not in reg.names("samplers")
    with pytest.raises(vidtt.RegistryError, match="no name"):
        reg.register(type("Nameless", (UniformSampler,), {"name": ""})())


def test_temporary_registration_is_removed_after_the_block() -> None:
    from vidtt.samplers.uniform import UniformSampler

    class Temp(UniformSampler):
        name = "temp"

    class Plugin:
        @vidtt.hookimpl
        def register_samplers(self, register):
            register(Temp(), name="temp-plugin")

    before = default_registry.names("samplers")
    with default_registry.temporary(Temp, Plugin()) as entries:
        assert entries[0].name == "temp"
        assert {"temp", "temp-plugin"} <= set(default_registry.names("samplers"))
        assert any(
            p.registered.get("samplers") == ["temp-plugin"] for p in default_registry.plugins()
        )
    assert default_registry.names("samplers") == before


def test_temporary_override_restores_the_original() -> None:
    from vidtt.samplers.uniform import UniformSampler

    class Fake(UniformSampler):
        name = "uniform"

    with default_registry.temporary(Fake(), override=True):
        assert type(default_registry.sampler("uniform")) is Fake
    assert type(default_registry.sampler("uniform")).__name__ == "UniformSampler"


def test_plugins_describes_each_plugin() -> None:
    info = {p.name: p for p in quiet_registry().plugins()}
    assert info["uniform"].registered == {"samplers": ["uniform"]}
    assert info["cuda"].describe()["distribution"] == "vidtt"


def test_import_vidtt_and_listing_plugins_stay_light() -> None:
    import subprocess

    code = (
        "import sys, vidtt; vidtt.registry.plugins(); vidtt.registry.names('backends');"
        "print([m for m in ('torch', 'transformers', 'av') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_strict_failure_leaves_the_registry_unloaded(plugin_dist, monkeypatch) -> None:
    plugin_dist("broken-dist", "broken_mod", "raise RuntimeError('boom')")
    reg = Registry(strict=True, use_environment=False)
    for _ in range(2):  # the second call raises again, not a half-loaded registry
        with pytest.raises(vidtt.PluginError, match="boom"):
            reg.names("samplers")
        assert not reg._loaded and reg._stacks["samplers"] == {}


def test_misspelled_hook_is_reported(plugin_dist) -> None:
    plugin_dist(
        "typo-dist",
        "typo_mod",
        """
        import vidtt

        @vidtt.hookimpl
        def register_sampler(register):
            pass
    """,
    )
    with pytest.warns(
        PluginLoadWarning,
        match="unknown hook 'register_sampler' \\(did you mean 'register_samplers'",
    ):
        quiet_registry().names("samplers")


def test_plugin_without_hooks_is_reported(plugin_dist) -> None:
    plugin_dist("empty-dist", "empty_mod", "def register_samplers(register):\n    pass\n")
    with pytest.warns(PluginLoadWarning, match="defines no vidtt hook.*@vidtt.hookimpl"):
        quiet_registry().names("samplers")


def test_config_lists_narrow_but_never_undo_the_environment(plugin_dist, monkeypatch) -> None:
    plugin_dist("one-dist", "one_mod", GOOD_PLUGIN.format(name="one", extra=""))
    plugin_dist("two-dist", "two_mod", GOOD_PLUGIN.format(name="two", extra=""))
    monkeypatch.setenv("VIDTT_DISABLE_PLUGINS", "one_mod,keyframe")
    config = vidtt.PipelineConfig(plugins=["one_mod", "two_mod"], disable_plugins=[])
    names = config.registry().names("samplers")
    assert "one" not in names and "keyframe" not in names and "two" in names
    monkeypatch.delenv("VIDTT_DISABLE_PLUGINS")
    monkeypatch.setenv("VIDTT_PLUGINS", "one_mod")
    names = vidtt.PipelineConfig(plugins=["one_mod", "two_mod"]).registry().names("samplers")
    assert "one" in names and "two" not in names
    names = vidtt.PipelineConfig(disable_plugins=["one_mod"]).registry().names("samplers")
    assert "one" not in names and "two" not in names


def test_blocked_plugin_cannot_be_added_in_code(monkeypatch) -> None:
    monkeypatch.setenv("VIDTT_DISABLE_PLUGINS", "sneaky")

    class Plugin:
        @vidtt.hookimpl
        def register_samplers(self, register):
            pass

    reg = Registry()
    with pytest.raises(vidtt.RegistryError, match="blocked"):
        reg.add_plugin(Plugin(), name="sneaky")


def test_timed_out_import_is_remembered(plugin_dist, monkeypatch) -> None:
    import time

    plugin_dist("sleepy-dist", "sleepy_mod", "import time\ntime.sleep(5)\n")
    monkeypatch.setenv("VIDTT_PLUGIN_TIMEOUT", "0.3")
    with pytest.warns(PluginLoadWarning, match="did not finish within 0.3 s"):
        quiet_registry().names("samplers")
    started = time.monotonic()
    with pytest.warns(PluginLoadWarning, match="not tried again"):
        quiet_registry().names("samplers")
    assert time.monotonic() - started < 0.2
