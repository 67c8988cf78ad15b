"""Shared fixtures: videos made on the spot and fake plugin distributions on sys.path."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vidtt.testing import make_video


@pytest.fixture(scope="session", autouse=True)
def vidtt_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The on-disk cache (`vidtt run` uses it) in a folder of the session, never ~/.cache."""
    folder = tmp_path_factory.mktemp("vidtt-cache")
    before = os.environ.get("VIDTT_CACHE_DIR")
    os.environ["VIDTT_CACHE_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("VIDTT_CACHE_DIR", None)
    else:
        os.environ["VIDTT_CACHE_DIR"] = before


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty on-disk cache of the test's own (notes made by one test never serve another)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(folder))
    return folder


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Small videos of every kind the samplers must handle."""
    root = tmp_path_factory.mktemp("videos")
    vfr = [0, 0.1, 0.15, 0.5, 0.55, 0.9, 1.0, 1.5] + [1.6 + 0.04 * i for i in range(40)]
    return {
        "h264": make_video(root / "h264.mp4", frames=48),
        "h264_gop": make_video(root / "gop.mp4", frames=72, gop=12),
        "vp9": make_video(root / "vp9.webm", frames=48, gop=16),
        "mpeg4": make_video(root / "mpeg4.avi", frames=48, gop=10),
        "vfr": make_video(root / "vfr.mp4", frames=48, frame_times=vfr),
        "rotated": make_video(root / "rotated.mp4", frames=24, rotation=90),
        "audio": make_video(root / "with audio.mkv", frames=48, audio=True),
    }


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """Write a module plus a `.dist-info` declaring it as a `vidtt` entry point, on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))

    def make(
        dist: str, module: str, source: str, entry: str | None = None, version: str = "1.0"
    ) -> Path:
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[vidtt]\n{entry or module} = {module}\n")
        return site

    return make


@pytest.fixture(scope="session")
def llava_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import make_llava

    return make_llava(tmp_path_factory.mktemp("llava"))


@pytest.fixture(scope="session")
def next_video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import make_llava_next_video

    return make_llava_next_video(tmp_path_factory.mktemp("llava-next-video"))


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_models import make_qwen25_vl

    return make_qwen25_vl(tmp_path_factory.mktemp("qwen2.5-vl"))


def tiny_pipeline(folder: Path):
    import vidtt

    return vidtt.Pipeline(
        model=str(folder),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 12},
    )


@pytest.fixture(scope="session")
def llava(llava_dir: Path):
    return tiny_pipeline(llava_dir)


@pytest.fixture(scope="session")
def next_video(next_video_dir: Path):
    return tiny_pipeline(next_video_dir)


@pytest.fixture(scope="session")
def qwen(qwen_dir: Path):
    return tiny_pipeline(qwen_dir)


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs, for the module's tests."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()
