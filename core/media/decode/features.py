"""Small pictures of every frame for shot detection: planes read as they are decoded.

A frame's luma and chroma planes are sampled on a coarse grid straight from the decoder's
buffers (no RGB conversion, no full-size copy): about `LUMA_WIDTH` luma samples across and
half as many of each chroma plane. Only other pixel formats go through libswscale, at that
small size. The same features come from frame lists (their RGB turned into YUV).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

from .decoder import Converter, Guard, Resize

LUMA_WIDTH = 64
PLANAR = {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p", "yuv440p"}
# options that make decoding cheaper and change nothing shot detection looks at
FAST_DECODE = {"skip_loop_filter": "all"}


@dataclass
class Features:
    """Luma (N, h, w) and chroma (N, 2, hc, wc) samples of N frames; `found[k]` says which
    rows were decoded (a damaged frame keeps zeros)."""

    luma: Any
    chroma: Any
    found: list[bool]


def grid(width: int, height: int, across: int) -> tuple[int, int, int]:
    """(step, rows, columns) of a grid of about `across` samples over a width x height plane."""
    step = max(1, width // across)
    return step, math.ceil(height / step), math.ceil(width / step)


class FeatureConverter(Converter):
    """A `Converter` that keeps each frame's coarse luma and chroma samples, not its RGB."""

    def __init__(self, count: int, coded: tuple[int, int], guard: Guard) -> None:
        import numpy as np

        self.count, self.coded, self.resize = count, coded, Resize()
        self.lock, self.local = threading.Lock(), threading.local()
        width, height = coded
        self.luma_grid = grid(width, height, LUMA_WIDTH)
        self.chroma_grid = grid((width + 1) // 2, (height + 1) // 2, LUMA_WIDTH // 2)
        _, rows, columns = self.luma_grid
        _, crows, ccolumns = self.chroma_grid
        self.luma = np.zeros((count, rows, columns), dtype=np.uint8)
        self.chroma = np.zeros((count, 2, crows, ccolumns), dtype=np.uint8)
        self.array = self.luma

    def put(self, row: int, frame: Any) -> int:
        fmt = frame.format.name
        if fmt not in PLANAR or (frame.width, frame.height) != self.coded:
            frame = self._small(frame)
        self.luma[row] = self._sampled(frame.planes[0], self.luma_grid)
        for c in (1, 2):
            plane = frame.planes[c]
            self.chroma[row, c - 1] = self._chroma(plane)
        return 0

    def _chroma(self, plane: Any) -> Any:
        """A chroma plane on the chroma grid, whatever its subsampling (4:2:0, 4:2:2, 4:4:4)."""
        import numpy as np

        step, rows, columns = self.chroma_grid
        values = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        down = max(1, plane.height * 2 // self.coded[1])  # rows of this plane per 4:2:0 row
        across = max(1, plane.width * 2 // self.coded[0])
        picked = values[:: step * down, : plane.width : step * across][:rows, :columns]
        if picked.shape != (rows, columns):  # odd sizes: pad with the last row or column
            picked = np.pad(
                picked, [(0, rows - picked.shape[0]), (0, columns - picked.shape[1])], mode="edge"
            )
        return picked

    @staticmethod
    def _sampled(plane: Any, at: tuple[int, int, int]) -> Any:
        import numpy as np

        step, rows, columns = at
        values = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        return values[: rows * step : step, : columns * step : step][:rows, :columns]

    def _small(self, frame: Any) -> Any:
        """Another pixel format (or size) as yuv444p at the coded size, through libswscale."""
        scaler = getattr(self.local, "scaler", None)
        if scaler is None:
            from av.video.reformatter import VideoReformatter

            scaler = self.local.scaler = VideoReformatter()
        width, height = self.coded
        return scaler.reformat(frame, width=width, height=height, format="yuv444p", threads=1)


def frames_features(frames: list[Any]) -> Features:
    """Features of RGB frames (HxWx3 uint8 arrays of one size), as a video's would be."""
    import numpy as np

    stack = np.stack(frames).astype(np.float32)
    height, width = stack.shape[1:3]
    step, rows, columns = grid(width, height, LUMA_WIDTH)
    sampled = stack[:, : rows * step : step, : columns * step : step]
    r, g, b = sampled[..., 0], sampled[..., 1], sampled[..., 2]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    u = 128 + (b - y) * 0.564
    v = 128 + (r - y) * 0.713
    chroma = np.stack([u[:, ::2, ::2], v[:, ::2, ::2]], axis=1)
    as_bytes = lambda a: np.clip(np.rint(a), 0, 255).astype(np.uint8)  # noqa: E731
    return Features(as_bytes(y), as_bytes(chroma), [True] * len(frames))
