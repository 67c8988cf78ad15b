"""Showing what a model sees: frames written as images, and a labelled contact sheet."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from vidtt.types import Clip

LABEL_HEIGHT = 14
SHEET_SIDE = 4096  # cells shrink (not below MIN_CELL) to keep a sheet about this wide
MIN_CELL = 96
SHOT_COLOUR = (255, 210, 0)  # marks the first frame of each shot
SHOT_BAR = 3


def frame_name(index: int, time: float) -> str:
    return f"frame-{index:06d}-{time:010.3f}s.png"


def write_frames(clip: Clip, folder: Path) -> list[Path]:
    """Each frame as a PNG named by its index and time."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, index, time in zip(clip.frames, clip.indices, clip.timestamps):
        path = folder / frame_name(index, time)
        image.save(path)
        paths.append(path)
    return paths


def grid_shape(count: int) -> tuple[int, int]:
    """(columns, rows) of the most nearly square grid that holds `count` frames."""
    columns = math.ceil(math.sqrt(count))
    return columns, math.ceil(count / columns)


def thumb_size(width: int, height: int, box: int) -> tuple[int, int]:
    """The frame's size scaled to fit a `box` x `box` square (at least 1 pixel a side)."""
    scale = box / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def contact_sheet(clip: Clip, thumb_width: int = 240) -> Any:
    """One image with the frames in a grid, each labelled with its timestamp and index (and
    its shot, `S3`, when the clip has shots: each shot's first frame is marked in yellow).

    Each thumbnail fits in a `thumb_width` square, and each cell is the thumbnail's shape (a
    wide video makes wide, low cells) with its label above, so the sheet's size is bounded by
    the number of frames whatever the video's shape; a cell is never narrower than its label
    needs (`MIN_CELL`, or the square when that is smaller). With many frames the squares
    shrink (to `MIN_CELL` pixels at least) so that the sheet stays about `SHEET_SIDE` pixels
    wide."""
    from PIL import Image, ImageDraw

    columns, rows = grid_shape(len(clip))
    thumb_width = max(min(MIN_CELL, thumb_width), min(thumb_width, SHEET_SIDE // columns))
    thumb = thumb_size(clip.width, clip.height, thumb_width)
    cell = (max(thumb[0], min(MIN_CELL, thumb_width)), thumb[1] + LABEL_HEIGHT)
    sheet = Image.new("RGB", (columns * cell[0], rows * cell[1]), "black")
    draw = ImageDraw.Draw(sheet)
    shot_of = shot_numbers(clip)
    for n, (image, index, time) in enumerate(zip(clip.frames, clip.indices, clip.timestamps)):
        x, y = (n % columns) * cell[0], (n // columns) * cell[1]
        left = x + (cell[0] - thumb[0]) // 2
        sheet.paste(image.resize(thumb, Image.Resampling.BILINEAR), (left, y + LABEL_HEIGHT))
        label = f"{time:.2f} s  #{index}"
        if n in shot_of:
            number, first = shot_of[n]
            label = f"S{number} {label}"
            if first:  # a shot change: a bar down the cell's left edge, the label on yellow
                draw.rectangle((x, y, x + cell[0] - 1, y + LABEL_HEIGHT - 1), fill=SHOT_COLOUR)
                draw.rectangle((x, y, x + SHOT_BAR - 1, y + cell[1] - 1), fill=SHOT_COLOUR)
        draw.text(
            (x + 3, y + 1), label, fill="black" if n in shot_of and shot_of[n][1] else "white"
        )
    return sheet


def shot_numbers(clip: Clip) -> dict[int, tuple[int, bool]]:
    """Per frame position: its shot's number (from 1) and whether it is the shot's first."""
    numbers = {}
    for number, shot in enumerate(getattr(clip, "shots", None) or [], 1):
        for k, position in enumerate(shot.frames):
            numbers[position] = (number, k == 0)
    return numbers
