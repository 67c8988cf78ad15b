"""One check of exactness for every sampling test: a Clip against a full sequential decode."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
from PIL import Image

import vidtt
from vidtt.media.containers import main_video_stream


def full_decode(path: Path) -> list[Any]:
    """Every frame a plain sequential decode of the main video stream displays."""
    with av.open(str(path)) as container:
        return list(container.decode(main_video_stream(container)))


def assert_exact(clip: vidtt.Clip, path: Path, frames: list[Any] | None = None) -> None:
    """Frame k of `clip` is frame `clip.indices[k]` of a full decode, pixel for pixel, converted
    to the clip's size by the same libswscale call; indices are distinct and increasing."""
    frames = full_decode(path) if frames is None else frames
    assert clip.indices == sorted(set(clip.indices)), clip.indices
    assert clip.indices[-1] < len(frames), (clip.indices, len(frames))
    assert clip.array.shape[1:] == (clip.height, clip.width, 3)
    for row, index in enumerate(clip.indices):
        expected = reference_rgb(frames[index], clip.width, clip.height)
        assert np.array_equal(clip.array[row], expected), f"frame {index} differs ({path.name})"


TURNS = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    270: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}


def reference_rgb(frame: Any, width: int, height: int) -> Any:
    """The frame upright (display rotation applied with PIL) at width x height."""
    turn = TURNS.get(int(frame.rotation or 0))
    if turn in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270):
        width, height = height, width
    scaled = (width, height) != (frame.width, frame.height)
    rgb = frame.to_ndarray(
        format="rgb24", width=width, height=height, interpolation="AREA" if scaled else None
    )
    return np.asarray(Image.fromarray(rgb).transpose(turn)) if turn else rgb


def assert_resized_from(clip: vidtt.Clip, frames: list[Any], tolerance: float = 14.0) -> None:
    """Each frame is close to a plain PIL resize of its exact full-resolution frame, and closer
    to it than to any other frame of the video."""
    full = [f.to_ndarray(format="rgb24") for f in frames]
    for row, index in enumerate(clip.indices):
        got = clip.array[row].astype(np.float32)
        errors = [_distance(got, reference, clip.width, clip.height) for reference in full]
        assert errors[index] <= tolerance, (index, errors[index])
        assert errors[index] == min(errors), (index, errors[index], min(errors))


def _distance(got: Any, reference: Any, width: int, height: int) -> float:
    image = Image.fromarray(reference).resize((width, height), Image.Resampling.BOX)
    return float(np.abs(got - np.asarray(image, dtype=np.float32)).mean())
