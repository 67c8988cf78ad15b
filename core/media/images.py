"""Images in a prompt: read from whatever a caller holds, as PIL RGB, within the pixel limit.

Every entry point (Python, the CLI, the server) reads its images here, so a decompression bomb
is refused the same way wherever it arrives.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from vidtt import limits
from vidtt.errors import LimitError, OptionsError
from vidtt.types import VideoSource


def load_image(image: Any, name: str | None = None) -> Any:
    """A PIL RGB image from a PIL image, an array, encoded bytes, a path or an http(s) URL;
    `name` says which image in errors (default: the path, or "image")."""
    from PIL import Image

    label = name or (str(image) if isinstance(image, (str, Path)) else "image")
    if isinstance(image, Image.Image):
        check_size(image.width, image.height, label)
        return image.convert("RGB")
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode(io.BytesIO(bytes(image)), label)
    if isinstance(image, (str, Path)):
        return read(image, label)
    import numpy as np

    array = np.asarray(image)
    if array.ndim < 2:
        raise OptionsError(f"{label}: expected an image (height x width [x channels])")
    check_size(array.shape[1], array.shape[0], label)
    return Image.fromarray(array).convert("RGB")


def read(image: str | Path, label: str) -> Any:
    """An image file or an http(s) URL, decoded."""
    source = VideoSource.of(image)
    try:
        if source.kind == "url":
            from vidtt.media.fetch import download

            with download(source.value) as data:
                return decode(data, label)
        with open(source.value, "rb") as data:
            return decode(data, label)
    except FileNotFoundError:
        raise OptionsError(f"image not found: {image}") from None
    except IsADirectoryError:
        raise OptionsError(f"{image} is a folder, not an image") from None


def decode(data: Any, label: str) -> Any:
    """A PIL RGB image from an open binary file, its size checked before its pixels decode."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(data)
            check_size(image.width, image.height, label)
            return image.convert("RGB")
    except (
        UnidentifiedImageError,
        OSError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
    ) as exc:
        raise OptionsError(f"cannot read {label}: {exc}") from None


def check_size(width: int, height: int, label: str) -> None:
    """Refuse an image of more pixels than `vidtt.limits` allows."""
    max_pixels = limits.current().max_pixels
    if width * height > max_pixels:
        raise LimitError(
            f"{label}: the image has {width}x{height} pixels, over the limit of {max_pixels} "
            "(raise vidtt.limits max_pixels to allow it)"
        )
