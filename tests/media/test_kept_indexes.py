"""A video sampled again in one process has its packets read once: the index is kept per file
version, a changed file is scanned again, and the kept indexes stay within their bound."""

from __future__ import annotations

import os

import pytest

from vidtt.config import PipelineConfig
from vidtt.media.decode import kept_indexes
from vidtt.testing import make_video


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """The labels of the videos scanned while the test runs (nothing kept before it)."""
    kept_indexes.forget()
    seen: list[str] = []
    scan = kept_indexes.scan

    def counted(container, stream, label, guard=None):
        seen.append(label)
        return scan(container, stream, label, guard)

    monkeypatch.setattr(kept_indexes, "scan", counted)
    yield seen
    kept_indexes.forget()


def _sampler(name: str):
    return PipelineConfig().registry().sampler(name)


def test_another_sampling_of_a_file_reads_its_packets_once(scans, tmp_path) -> None:
    path = make_video(tmp_path / "a.mp4", frames=90, gop=12)
    uniform, scene = _sampler("uniform"), _sampler("scene")
    clips = [uniform.sample(str(path), uniform.options(num_frames=n)) for n in (4, 8, 4)]
    scene.sample(str(path), scene.options(max_frames=6))
    uniform.probe(str(path))
    assert len(scans) == 1
    kept_indexes.forget()
    fresh = uniform.sample(str(path), uniform.options(num_frames=8))
    assert len(scans) == 2
    assert fresh.indices == clips[1].indices and fresh.timestamps == clips[1].timestamps
    assert (fresh.array == clips[1].array).all()


def test_a_changed_file_is_scanned_again(scans, tmp_path) -> None:
    path = tmp_path / "a.mp4"
    make_video(path, frames=48)
    uniform = _sampler("uniform")
    assert uniform.sample(str(path), uniform.options(num_frames=2)).info.frame_count == 48
    make_video(tmp_path / "b.mp4", frames=72)
    os.replace(tmp_path / "b.mp4", path)  # the same name, another file
    assert uniform.sample(str(path), uniform.options(num_frames=2)).info.frame_count == 72
    assert len(scans) == 2


def test_bytes_are_scanned_each_time(scans, tmp_path) -> None:
    data = make_video(tmp_path / "a.mp4", frames=24).read_bytes()
    uniform = _sampler("uniform")
    for _ in range(2):
        uniform.sample(data, uniform.options(num_frames=2))
    assert len(scans) == 2


def test_the_kept_indexes_stay_within_their_bound(scans, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(kept_indexes, "MAX_FRAMES", 100)
    uniform = _sampler("uniform")
    paths = [make_video(tmp_path / f"{n}.mp4", frames=40) for n in range(3)]
    for path in paths:  # 120 frames: the first is dropped for the third
        uniform.sample(str(path), uniform.options(num_frames=2))
    uniform.sample(str(paths[2]), uniform.options(num_frames=3))
    assert len(scans) == 3
    uniform.sample(str(paths[0]), uniform.options(num_frames=3))
    assert len(scans) == 4


def test_forgetting_one_file_keeps_the_others(scans, tmp_path) -> None:
    a, b = make_video(tmp_path / "a.mp4", frames=24), make_video(tmp_path / "b.mp4", frames=24)
    uniform = _sampler("uniform")
    for path in (a, b):
        uniform.sample(str(path), uniform.options(num_frames=2))
    kept_indexes.forget(str(tmp_path / "." / "a.mp4"))  # any spelling of the path
    for path in (a, b):
        uniform.sample(str(path), uniform.options(num_frames=2))
    assert [os.path.basename(label) for label in scans].count("a.mp4") == 2
    assert [os.path.basename(label) for label in scans].count("b.mp4") == 1
