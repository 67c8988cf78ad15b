"""Any output size from any source size: odd widths, tiny frames, upscaling within limits."""

from __future__ import annotations

from pathlib import Path

import pytest
from exact import assert_exact, assert_resized_from, full_decode

import vidtt
from vidtt import LimitError
from vidtt.testing import make_video

OUTPUT_SIZES = [64, 97, 100, 127, 224, 300, 333, 384, 448, 511, 512]
COMMON = [(854, 480), (426, 240), (1366, 768)]
pytestmark = pytest.mark.slow


def _source(root: Path, codec: str, width: int, height: int) -> Path:
    even = width % 2 == 0 and height % 2 == 0
    if codec == "h264":
        fmt = "yuv420p" if even else "yuv444p"  # 4:2:0 H.264 needs even sides
        return make_video(root / f"{width}x{height}.mp4", 3, size=(width, height), pix_fmt=fmt)
    return make_video(root / f"{width}x{height}.webm", 3, size=(width, height))


@pytest.mark.parametrize("codec", ["h264", "vp9"])
def test_sweep_of_source_widths_and_output_sizes(tmp_path: Path, codec: str) -> None:
    for n, width in enumerate(range(2, 67)):
        height = max(2, width * 3 // 4) + (n % 2 if codec == "vp9" or width % 2 else 0)
        path = _source(tmp_path, codec, width, height)
        reference = full_decode(path)
        size = OUTPUT_SIZES[n % len(OUTPUT_SIZES)]
        side = OUTPUT_SIZES[(n + 5) % len(OUTPUT_SIZES)]
        for options, expected in [
            ({"size": size}, _shorter_side(width, height, size)),
            ({"max_side": side}, _longer_side(width, height, side)),
            ({"size": (size, side)}, (size, side)),
            ({}, (width, height)),
        ]:
            clip = vidtt.sample(path, num_frames=3, **options)
            assert (clip.width, clip.height) == expected, (width, height, options)
            assert_exact(clip, path, reference)
            if min(width, height) >= 16:
                assert_resized_from(clip, reference)


@pytest.mark.parametrize("width,height", [(1, 1), (3, 5), (5, 3), *COMMON])
def test_tiny_and_common_sources(tmp_path: Path, width: int, height: int) -> None:
    codec = "vp9" if width * height < 10 else "h264"
    path = _source(tmp_path, codec, width, height)
    reference = full_decode(path)
    for options in [{}, {"size": 224}, {"max_side": 300}, {"size": 100}, {"size": (7, 3)}]:
        clip = vidtt.sample(path, num_frames=3, **options)
        assert_exact(clip, path, reference)
        if min(width, height) >= 16:
            assert_resized_from(clip, reference)


def test_upscaling_is_capped_by_max_pixels(tmp_path: Path) -> None:
    path = _source(tmp_path, "h264", 160, 90)
    with pytest.raises(LimitError, match="16000x9000"):
        vidtt.sample(path, num_frames=2, size=9000)
    with vidtt.limits.use(max_pixels=100 * 100), pytest.raises(LimitError, match="max_pixels"):
        vidtt.sample(path, num_frames=2, size=(101, 100))


def _shorter_side(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _longer_side(width: int, height: int, side: int) -> tuple[int, int]:
    if max(width, height) <= side:
        return width, height
    scale = side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))
