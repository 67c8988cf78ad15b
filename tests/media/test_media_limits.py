"""Memory and work are bounded before decoding: clip bytes, upscaling, interval steps, sheets,
frame lists."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vidtt
from vidtt import LimitError, OptionsError
from vidtt.media.sheet import contact_sheet
from vidtt.testing import make_video

pytestmark = pytest.mark.slow

PROBE = """
import json, sys
import vidtt
try:
    clip = vidtt.sample(sys.argv[1], **json.loads(sys.argv[2]))
    outcome = list(clip.array.shape)
except vidtt.VidttError as exc:
    outcome = type(exc).__name__ + ": " + str(exc)
# VmHWM is this program's own peak (ru_maxrss would count the parent's memory before exec).
peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(json.dumps([outcome, int(peak) / 1024]))
"""


def _flat(path: Path, side: int, frames: int) -> Path:
    """A flat grey H.264 stream of `side` x `side` frames: tiny file, huge frames."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = side
        stream.codec_context.options = {"preset": "ultrafast"}
        frame = av.VideoFrame(side, side, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([90]) * plane.buffer_size)
        for i in range(frames):
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _probe(path: Path, **options: object) -> tuple[object, float]:
    """Sample in a fresh process; (shape or error, peak RSS in MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    outcome, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return outcome, peak


def test_clip_bytes_are_refused_before_decoding(tmp_path: Path) -> None:
    path = _flat(tmp_path / "flat.mp4", 4096, 65)
    outcome, peak = _probe(path, num_frames=64)
    assert isinstance(outcome, str) and outcome.startswith("LimitError"), outcome
    assert "64 frames at 4096x4096" in outcome and "max_clip_bytes" in outcome
    assert peak < 1024, peak


def test_huge_frames_decode_in_bounded_memory(tmp_path: Path) -> None:
    path = _flat(tmp_path / "flat8k.mp4", 8192, 2)
    outcome, peak = _probe(path, num_frames=2, max_side=512)
    assert outcome == [2, 512, 512, 3]
    assert peak < 1024, peak


def test_clip_limit_is_configurable(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.mp4", frames=8)
    with vidtt.limits.use(max_clip_bytes=160 * 120 * 3 * 4), pytest.raises(LimitError):
        vidtt.sample(path, num_frames=5)
    with vidtt.limits.use(max_clip_bytes=160 * 120 * 3 * 4):
        assert len(vidtt.sample(path, num_frames=4)) == 4


@pytest.mark.parametrize(
    "options",
    [{"fps": 1e9}, {"every": 1e-300}, {"every": 5e-324}, {"fps": 1e308}],
)
def test_tiny_intervals_take_each_frame_once(tmp_path: Path, options: dict) -> None:
    path = make_video(tmp_path / "a.mp4", frames=24)
    clip = vidtt.sample(path, "interval", **options)
    assert clip.indices == list(range(24))


@pytest.mark.parametrize("options", [{"fps": float("inf")}, {"every": float("nan")}])
def test_non_finite_intervals_are_refused(tmp_path: Path, options: dict) -> None:
    path = make_video(tmp_path / "a.mp4", frames=4)
    with pytest.raises(OptionsError, match="finite"):
        vidtt.sample(path, "interval", **options)


def test_contact_sheet_of_an_extreme_shape_is_small() -> None:
    clip = vidtt.sample(np.zeros((4, 4096, 16, 3), dtype=np.uint8))
    sheet = contact_sheet(clip)
    assert sheet.width * sheet.height <= 2 * 2 * 240 * (240 + 14)


def test_contact_sheet_of_many_frames_stays_readable_and_bounded() -> None:
    clip = vidtt.sample(np.zeros((2048, 2, 2, 3), dtype=np.uint8), num_frames=2048)
    sheet = contact_sheet(clip)
    assert sheet.width * sheet.height < 25_000_000  # under 75 MB (it was 126 Mpx)
    few = contact_sheet(vidtt.sample(np.zeros((4, 32, 32, 3), dtype=np.uint8)))
    assert few.size == (2 * 240, 2 * (240 + 14))  # few frames keep their full-size cells


def test_frame_lists_are_sampled_like_videos() -> None:
    frames = [np.full((8, 10, 3), i, dtype=np.uint8) for i in range(20)]
    clip = vidtt.sample(frames, num_frames=4)
    assert clip.indices == [2, 7, 12, 17] and clip.timestamps == [2.0, 7.0, 12.0, 17.0]
    clip = vidtt.sample(frames, num_frames=2, start=10, end=14)
    assert clip.indices == [11, 13] and int(clip.array[0, 0, 0, 0]) == 11
    source = vidtt.VideoSource.from_frames(frames, fps=10)
    clip = vidtt.sample(source, "interval", every=0.5)
    assert clip.indices == [0, 5, 10, 15] and clip.info.fps == 10


@pytest.mark.parametrize(
    "frames,words",
    [
        ([], "empty"),
        (np.zeros((0, 4, 4, 3), dtype=np.uint8), "empty"),
        ([np.zeros((4, 4, 7), dtype=np.uint8)], "shape"),
        ([np.zeros((0, 0, 3), dtype=np.uint8)], "empty"),
        ([np.full((4, 4, 3), np.nan)], "NaN"),
        ([np.array([["a"]])], "values"),
    ],
)
def test_bad_frame_lists_name_the_problem(frames: object, words: str) -> None:
    with pytest.raises(OptionsError, match=words):
        vidtt.sample(frames, num_frames=1)


def test_frame_lists_accept_common_layouts() -> None:
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    first = np.zeros((3, 6, 8), dtype=np.float32)  # channels first, floats in [0, 1]
    image = Image.new("L", (8, 6))
    clip = vidtt.sample([grey, rgba, first, image], num_frames=4)
    assert clip.array.shape == (4, 6, 8, 3)
