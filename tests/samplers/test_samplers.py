"""Samplers against a full sequential decode: exact frames, timestamps, sizes, ranges, sources."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

import vidtt
from vidtt.samplers.uniform import uniform_indices
from vidtt.testing import read_frame_number

CODECS = ["h264", "h264_gop", "vp9", "mpeg4", "vfr", "audio"]


def full_decode(path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame in presentation order, and its time from the first frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        base = stream.time_base
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    first = frames[0][0]
    return [f for _, f in frames], [float((pts - first) * base) for pts, _ in frames]


@pytest.fixture(scope="module")
def reference(videos):
    return {name: full_decode(path) for name, path in videos.items()}


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize(
    "sampler,options",
    [
        ("uniform", {"num_frames": 7}),
        ("uniform", {"num_frames": 5, "rule": "linspace", "start": 0.4, "end": 1.8}),
        ("uniform", {"num_frames": 48, "rule": "arange"}),
        ("interval", {"every": 0.3}),
        ("keyframe", {"max_frames": 3}),
    ],
)
def test_frames_equal_a_full_sequential_decode(videos, reference, name, sampler, options):
    clip = vidtt.sample(videos[name], sampler, **options)
    frames, times = reference[name]
    assert len(clip) > 0 and clip.indices == sorted(set(clip.indices))
    for image, index, stamp in zip(clip.frames, clip.indices, clip.timestamps):
        assert image.mode == "RGB"
        assert np.array_equal(np.asarray(image), frames[index]), f"frame {index} differs"
        assert stamp == pytest.approx(times[index], abs=1e-6)
    assert clip.info.frame_count == len(frames) and clip.info.frame_count_exact


def test_uniform_index_rules() -> None:
    assert uniform_indices(100, 4, "centers") == [12, 37, 62, 87]
    assert uniform_indices(100, 4, "linspace") == [0, 33, 66, 99]
    assert uniform_indices(100, 4, "arange") == [0, 25, 50, 75]
    assert uniform_indices(5, 5, "centers") == [0, 1, 2, 3, 4]
    assert uniform_indices(10, 1, "linspace") == [0]


def test_uniform_reads_the_right_frames_by_content(videos) -> None:
    clip = vidtt.sample(videos["h264_gop"], num_frames=6)
    assert [read_frame_number(np.asarray(f)) for f in clip.frames] == clip.indices
    assert clip.indices == [6, 18, 30, 42, 54, 66]


def test_decoding_seeks_per_gop_and_stops_after_the_last_target(videos) -> None:
    clip = vidtt.sample(videos["h264_gop"], num_frames=2, rule="arange")  # frames 0 and 36
    assert clip.indices == [0, 36]
    assert clip.metadata["seeks"] == 2
    assert clip.metadata["decoded_frames"] < 20  # not 37: the GOPs between were skipped


def test_variable_frame_rate_timestamps(videos) -> None:
    clip = vidtt.sample(videos["vfr"], "interval", every=0.5, end=2.0)
    assert clip.timestamps == pytest.approx([0.0, 0.5, 1.0, 1.5, 1.96], abs=0.05)
    assert clip.indices[:4] == [0, 3, 6, 7]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_non_zero_start_time(tmp_path, suffix) -> None:
    from vidtt.testing import make_video

    path = make_video(
        tmp_path / f"late{suffix}", frames=24, frame_times=[1.0 + i / 24 for i in range(24)]
    )
    clip = vidtt.sample(path, num_frames=3)
    assert clip.info.start_time == pytest.approx(1.0)
    assert clip.timestamps == pytest.approx([4 / 24, 12 / 24, 20 / 24], abs=1e-3)
    assert clip.info.duration == pytest.approx(1.0, abs=0.01) and not clip.warnings


def test_rotation_is_applied(videos, reference) -> None:
    clip = vidtt.sample(videos["rotated"], num_frames=3)
    frames, _ = reference["rotated"]
    assert clip.info.rotation == 90
    assert (clip.info.width, clip.info.height) == (120, 160)
    for image, index in zip(clip.frames, clip.indices):
        assert image.size == (120, 160)
        assert np.array_equal(np.asarray(image), np.rot90(frames[index]))


@pytest.mark.parametrize(
    "options,size",
    [
        ({"max_side": 80}, (80, 60)),
        ({"max_side": 400}, (160, 120)),
        ({"size": 60}, (80, 60)),
        ({"size": (32, 48)}, (32, 48)),
    ],
)
def test_frames_come_out_at_the_asked_size(videos, options, size) -> None:
    clip = vidtt.sample(videos["h264"], num_frames=2, **options)
    assert all(f.size == size for f in clip.frames)


def test_resized_frames_match_the_full_size_ones(videos, reference) -> None:
    clip = vidtt.sample(videos["h264"], num_frames=2, max_side=80)
    frames, _ = reference["h264"]
    for image, index in zip(clip.frames, clip.indices):
        expected = Image.fromarray(frames[index]).resize((80, 60), Image.BILINEAR)
        diff = np.abs(np.asarray(image, dtype=int) - np.asarray(expected, dtype=int)).mean()
        assert diff < 6


def test_video_info(videos) -> None:
    info = vidtt.sample(videos["h264_gop"], num_frames=1).info
    assert (info.width, info.height, info.frame_count) == (160, 120, 72)
    assert info.fps == pytest.approx(24) and info.duration == pytest.approx(3.0)
    assert info.codec == "h264" and info.keyframe_count == 6 and "mp4" in info.container


def test_webm_without_frame_count_in_headers(videos) -> None:
    with av.open(str(videos["vp9"])) as container:
        assert container.streams.video[0].frames == 0
    assert vidtt.sample(videos["vp9"], num_frames=2).info.frame_count == 48


def test_interval_thinning_and_minimum(videos) -> None:
    clip = vidtt.sample(videos["h264_gop"], "interval", fps=4, max_frames=5)
    assert len(clip) == 5 and clip.indices[0] == 0
    clip = vidtt.sample(videos["h264_gop"], "interval", every=2.5, min_frames=4)
    assert len(clip) == 4 and "min_frames" in clip.warnings[0]
    clip = vidtt.sample(videos["h264_gop"], "interval", fps=100)
    assert len(clip) == 72  # faster than the video: every frame, once


def test_keyframe_sampler_decodes_only_keyframes(videos) -> None:
    clip = vidtt.sample(videos["h264_gop"], "keyframe", max_frames=4)
    assert clip.indices == [0, 24, 36, 60] and clip.metadata["decoded_frames"] == 4
    clip = vidtt.sample(videos["h264_gop"], "keyframe", max_frames=10)
    assert len(clip) == 6 and "fewer than the 10 asked" in clip.warnings[0]


def test_bytes_file_and_frames_sources(videos) -> None:
    data = videos["vp9"].read_bytes()
    by_path = vidtt.sample(videos["vp9"], num_frames=3)
    for source in (data, io.BytesIO(data), vidtt.VideoSource.of(data)):
        clip = vidtt.sample(source, num_frames=3)
        assert clip.indices == by_path.indices
        assert all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(clip.frames, by_path.frames)
        )
    frames = [np.zeros((20, 40, 3), np.uint8), Image.new("RGB", (40, 20))]
    clip = vidtt.sample(frames, max_side=20)
    assert clip.timestamps == [0.0, 1.0] and [f.size for f in clip.frames] == [(20, 10)] * 2
    clip = vidtt.sample(np.zeros((3, 8, 8, 3), np.uint8))
    assert len(clip) == 3


def test_nothing_is_left_on_disk(videos, tmp_path, monkeypatch) -> None:
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    vidtt.sample(videos["h264"].read_bytes(), num_frames=2)
    assert list(tmp_path.iterdir()) == []
