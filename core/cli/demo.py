"""`vidtt demo`: the whole path on a made-up video and a tiny random-weight model, no download.

Both are made once in the cache folder (`VIDTT_CACHE`, default ~/.cache/vidtt) by the helpers in
`vidtt.testing`.
"""

from __future__ import annotations

import os
from pathlib import Path

from vidtt.testing.models import make_tiny_llava

QUESTION = "What is happening in this video?"


def cache_dir() -> Path:
    return Path(os.environ.get("VIDTT_CACHE") or Path.home() / ".cache" / "vidtt")


def demo_paths(cache: Path | None = None) -> tuple[Path, Path]:
    """Where the demo video and tiny model folder are (or will be made)."""
    root = (cache or cache_dir()) / "demo"
    return root / "sample.mp4", root / "tiny-llava"


def demo_assets(cache: Path | None = None) -> tuple[Path, Path]:
    """The demo video and tiny model folder, made on first use."""
    from vidtt.testing import make_video

    video, model = demo_paths(cache)
    root = video.parent
    if not video.exists():
        root.mkdir(parents=True, exist_ok=True)
        make_video(root / "partial.mp4", frames=96, fps=24, size=(320, 240), gop=24)
        (root / "partial.mp4").rename(video)
    if not (model / "config.json").exists():
        make_tiny_llava(model)
    return video, model
