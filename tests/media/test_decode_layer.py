"""The decode layer is core's (`vidtt.media.decode`), samplers only choose frames over it, and
core asks a plugin only through capabilities declared in `vidtt.plugin_api` (issue 34)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import vidtt
from vidtt import plugin_api
from vidtt.cli.settings import unreadable_videos
from vidtt.pipeline import cutting
from vidtt.testing import make_video
from vidtt.types import SegmentOptions

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = {"core": "vidtt", "samplers": "vidtt.samplers"}
PLUGIN_PACKAGES = (
    "vidtt.samplers",
    "vidtt.formatters",
    "vidtt.backends",
    "vidtt.transcribers",
    "vidtt.embedders",
)


def module_files(folder: str) -> dict[str, Path]:
    """Every module of `folder` by import name."""
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join([FOLDERS[folder], *parts])] = path
    return found


def imports_of(name: str, path: Path) -> set[str]:
    """What the module imports, at any depth (inside functions too), as absolute names; a
    `from X import y` counts as `X.y` (a module or not: callers keep those that are)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in out if n == "vidtt" or n.startswith("vidtt.")}


def test_core_imports_no_plugin_package() -> None:
    found = [
        f"{name} -> {target}"
        for name, path in module_files("core").items()
        for target in imports_of(name, path)
        if target.startswith(PLUGIN_PACKAGES)
    ]
    assert not found, found


def test_the_core_no_plugins_contract_names_every_core_module() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    contract = next(c for c in contracts if c["id"] == "core-no-plugins")
    tops = {".".join(name.split(".")[:2]) for name in module_files("core")} - {"vidtt"}
    assert set(contract["source_modules"]) == tops
    assert set(contract["forbidden_modules"]) == set(PLUGIN_PACKAGES)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                out.append(sorted(part))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circle_through_the_decode_layer_or_the_samplers() -> None:
    files = {**module_files("core"), **module_files("samplers")}
    graph = {
        name: {t for t in imports_of(name, path) if t in files and t != name}
        for name, path in files.items()
    }
    ours = ("vidtt.media.decode", "vidtt.samplers", "vidtt.plugin_api", "vidtt.interfaces")
    found = [c for c in cycles(graph) if any(m.startswith(ours) for m in c)]
    assert not found, found


def test_the_decode_layer_and_the_base_sampler_are_public() -> None:
    from vidtt.samplers.scene import SceneSampler
    from vidtt.samplers.uniform import UniformSampler

    assert issubclass(UniformSampler, plugin_api.PyAVSampler)
    assert UniformSampler.uses_decode_layer and not vidtt.Sampler.uses_decode_layer
    assert isinstance(SceneSampler(), plugin_api.ShotFinder)
    assert not isinstance(UniformSampler(), plugin_api.ShotFinder)
    assert "check_torchvision" in plugin_api.__all__


def fake_pipe(scene: Any) -> Any:
    registry = SimpleNamespace(names=lambda family: ["scene"], sampler=lambda name: scene)
    return SimpleNamespace(registry=registry)


class ThirdPartyShots(vidtt.Sampler):
    """A scene sampler of a third party: not the built-in, but a `ShotFinder`."""

    name = "scene"

    def sample(self, source: Any, options: Any) -> Any:
        raise AssertionError("segments must not sample to find shots")

    def shot_times(
        self, source: Any, *, start: float | None = None, end: float | None = None
    ) -> list[tuple[float, float]]:
        return [(start or 0.0, 4.0), (4.0, end or 12.0)]


class NoShots(vidtt.Sampler):
    name = "scene"

    def sample(self, source: Any, options: Any) -> Any:
        raise AssertionError("not called")


def test_segments_ask_the_scene_sampler_through_the_shot_finder_capability(
    tmp_path: Path,
) -> None:
    video = str(tmp_path / "v.mp4")
    span = cutting.Span(video, 0.0, 12.0, NoShots(), {})
    rule = SegmentOptions(min_segment=2, max_segments=6, shots=True)
    cut, how = cutting.cut(fake_pipe(ThirdPartyShots()), span, rule)
    assert how == "shots" and cut[0] == (0.0, 4.0)  # the third party's first shot
    assert cutting.cut(fake_pipe(NoShots()), span, rule)[1] == "windows"


def test_segments_probe_through_core_not_the_uniform_sampler(tmp_path: Path) -> None:
    """A `uniform` replaced by a plugin that cannot probe no longer hides the duration."""
    video = make_video(tmp_path / "v.mp4", frames=30, fps=10, size=(64, 48))
    blind = SimpleNamespace(probe=lambda source: None)
    pipe = SimpleNamespace(registry=SimpleNamespace(sampler=lambda name: blind), cache=None)
    request = SimpleNamespace(videos=[str(video)])
    resolved = SimpleNamespace(request=request, sampler_options=vidtt.SamplerOptions())
    span = cutting.span_of(pipe, resolved)  # type: ignore[arg-type]
    assert span.end == pytest.approx(3.0) and span.sampler is blind


class FFmpegPlugin(vidtt.Sampler):
    """A plugin's sampler (not a `PyAVSampler`) that reads videos through core's layer."""

    name = "ffmpeg-plugin"
    uses_decode_layer = True

    def sample(self, source: Any, options: Any) -> Any:
        raise AssertionError("not called")


class OwnReader(FFmpegPlugin):
    name = "own-reader"
    uses_decode_layer = False  # reads what FFmpeg does not


@pytest.mark.parametrize(("sampler", "refused"), [(FFmpegPlugin(), True), (OwnReader(), False)])
def test_local_videos_are_checked_for_samplers_that_declare_the_decode_layer(
    tmp_path: Path, sampler: Any, refused: bool
) -> None:
    bad = tmp_path / "not-a-video.mp4"
    bad.write_bytes(b"these bytes are no video at all" * 20)
    settings = SimpleNamespace(sampler=sampler, config=SimpleNamespace(limits=None))
    problems = unreadable_videos([str(bad)], settings)  # type: ignore[arg-type]
    assert bool(problems) is refused
    if refused:
        assert str(problems[0]).startswith("video 1 (")
