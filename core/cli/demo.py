"""`vidtt demo`: the whole path on a made-up video and a tiny random-weight model, no download.

Both are made once in vidtt's cache folder (`VIDTT_CACHE_DIR`, as `vidtt cache` and the store
use; the older `VIDTT_CACHE` still works, with a warning) by the helpers in `vidtt.testing`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vidtt import envs
from vidtt.cli.interrupt import make_cancellable
from vidtt.cli.options import subcommand

QUESTION = "What is happening in this video?"


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    demo = subcommand(sub, "demo", "a first run with no download: tiny model, made video", common)
    demo.add_argument("--backend", help="auto (default), cpu, cuda, ...")
    demo.set_defaults(func=cmd_demo)
    return demo


def cmd_demo(args: argparse.Namespace) -> int:
    from vidtt.pipeline.core import Pipeline
    from vidtt.settings.packages import check_torchvision

    check_torchvision()  # the tiny model is built with transformers, which imports it
    video, model = demo_paths()
    if not (video.exists() and (model / "config.json").exists()):
        print(
            f"vidtt demo: making a sample video and a tiny model in {video.parent} (once) ...",
            file=sys.stderr,
        )
        video, model = demo_assets()
    pipe = Pipeline(
        model=str(model),
        backend=args.backend or "auto",
        sampler_options={"num_frames": 6},
        generation={"max_new_tokens": 16},
    )
    make_cancellable(pipe.model)
    answer = pipe.ask(video, QUESTION)
    times = ", ".join(f"{t:.2f}" for t in answer.videos[0].timestamps)
    t = answer.timings
    print(
        f"video:    {video}\nmodel:    {model}\nframes:   {times} s\n"
        f"question: {QUESTION}\nanswer:   {answer.text!r}\n"
        f"backend:  {answer.backend} ({answer.device}, {answer.dtype}), formatter "
        f"{answer.formatter}\ntimings:  sampling {t.sampling:.3f} s, preprocessing "
        f"{t.preprocessing:.3f} s, prefill {t.prefill:.3f} s, decode {t.decode:.3f} s\n\n"
        "The model has random weights, so the answer is gibberish: this run only shows the "
        'whole path working.\nFor a real answer: vidtt ask VIDEO -q "..." --model '
        "llava-hf/llava-interleave-qwen-0.5b-hf (or a local model folder).\n"
        f"The files stay in {video.parent} (VIDTT_CACHE_DIR moves it); delete it to start afresh."
    )
    return 0


def cache_dir() -> Path:
    """vidtt's cache folder (`vidtt.envs.cache_dir`: `$VIDTT_CACHE_DIR`, ...). The old
    `$VIDTT_CACHE`, set alone, is still used; either way it gets a one-line warning."""
    return envs.cache_dir()


def demo_paths(cache: Path | None = None) -> tuple[Path, Path]:
    """Where the demo video and tiny model folder are (or will be made)."""
    root = (cache or cache_dir()) / "demo"
    return root / "sample.mp4", root / "tiny-llava"


def demo_assets(cache: Path | None = None) -> tuple[Path, Path]:
    """The demo video and tiny model folder, made on first use."""
    from vidtt.testing import make_video
    from vidtt.testing.models import make_tiny_llava

    video, model = demo_paths(cache)
    root = video.parent
    if not video.exists():
        root.mkdir(parents=True, exist_ok=True)
        make_video(root / "partial.mp4", frames=96, fps=24, size=(320, 240), gop=24)
        (root / "partial.mp4").rename(video)
    if not (model / "config.json").exists():
        make_tiny_llava(model)
    return video, model
