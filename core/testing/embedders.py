"""`colour`, an embedder for tests and examples: real features computed from the pixels, with
no model, so retrieval can be checked end to end on generated videos.

A frame's vector is how much of it each colour of `PALETTE` covers (each pixel counted for
its nearest colour), with the frame's most common colour (its background) left out, so a small
red square on grey makes a frame "red". A text's vector is the colours it names ("red", "a
blue car"). Both are L2-normalised; a text naming no colour is the zero vector.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from vidtt.plugin_api import Embedder, EmbedderOptions, hookimpl

PALETTE = {
    "red": (220, 30, 30),
    "green": (30, 180, 30),
    "blue": (30, 60, 220),
    "yellow": (230, 220, 40),
    "white": (245, 245, 245),
    "black": (10, 10, 10),
    "grey": (128, 128, 128),
}
NAMES = list(PALETTE)
STEP = 4  # every STEP-th pixel of each row and column is counted


class ColourEmbedder(Embedder):
    name = "colour"
    description = "colour coverage of each frame; the colours a text names (tests, examples)"

    def dimension(self, options: EmbedderOptions) -> int:
        return len(PALETTE)

    def embed_frames(self, frames: Any, options: EmbedderOptions) -> Any:
        import numpy as np

        arrays = np.asarray(frames, dtype=np.int32)[:, ::STEP, ::STEP, :3]
        colours = np.asarray(list(PALETTE.values()), dtype=np.int32)
        pixels = arrays.reshape(len(arrays), -1, 1, 3)
        nearest = ((pixels - colours) ** 2).sum(-1).argmin(-1)  # N x pixels
        counts = np.stack([(nearest == k).sum(1) for k in range(len(colours))], 1).astype(float)
        counts[np.arange(len(counts)), counts.argmax(1)] = 0  # the background
        return _unit(counts)

    def embed_texts(self, texts: list[str], options: EmbedderOptions) -> Any:
        import numpy as np

        words = [set(re.findall(r"[a-z]+", text.lower())) for text in texts]
        named = np.array([[float(n in w or f"{n}s" in w) for n in NAMES] for w in words])
        return _unit(named.reshape(len(texts), len(NAMES)))


def colour_plugin(folder: Path) -> dict[str, str]:
    """`colour` installed as a plugin for vidtt processes: a site folder (its module and a
    `.dist-info` declaring the entry point) made in `folder`; this environment with it on
    PYTHONPATH."""
    info = folder / "vidtt_colour-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (folder / "vidtt_colour.py").write_text(f"from {__name__} import register_embedders\n")
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vidtt-colour\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[vidtt]\nvidtt_colour = vidtt_colour\n")
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _unit(rows: Any) -> Any:
    import numpy as np

    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms == 0, 1.0, norms)).astype(np.float32)


@hookimpl
def register_embedders(register) -> None:  # type: ignore[no-untyped-def]
    register(ColourEmbedder())
