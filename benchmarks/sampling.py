"""Sampling speed and memory: vidtt against the seed recipe, transformers, decord and torchcodec.

    python benchmarks/sampling.py [--runs 3] [--quick]

Makes its videos once in benchmarks/data/ (60 s 1080p H.264 with a 2 s GOP, a 10 s 720p clip with
a single keyframe, a 5 min 720p clip), then, in this one process and warm, takes the median of
`--runs` timings of each peer for 8 and 32 frames at the same indices (transformers' rule,
floor(k * N / n); the seed recipe keeps every (N // n)-th frame, as the guide does). Every peer's
frames are compared with vidtt's frames at the same indices. Peak memory is the process's
resident memory above its level before the call, sampled every 2 ms. Peers not installed are
skipped (decord: `pip install decord`; torchcodec needs FFmpeg's shared libraries).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import psutil

import vidtt
from vidtt.samplers.base import PyAVSampler
from vidtt.samplers.synthetic import make_video

DATA = Path(__file__).parent / "data"
X264 = {"preset": "veryfast"}  # B-frames, as most real H.264 files have
FILES = {
    "60s-1080p-gop2s.mp4": dict(frames=1800, fps=30, size=(1920, 1080), gop=60, options=X264),
    "10s-720p-1key.mp4": dict(frames=300, fps=30, size=(1280, 720), gop=100000, options=X264),
    "5min-720p.mp4": dict(frames=9000, fps=30, size=(1280, 720), gop=250, options=X264),
}
QUICK = {"60s-1080p-gop2s.mp4"}


class AtIndices(PyAVSampler):
    """vidtt's decoder at given indices (to compare with peers that pick their own)."""

    name = "at-indices"
    indices: ClassVar[list[int]] = []

    def choose(self, index, span, options, label, warnings):
        return sorted(set(self.indices))


def arange(total: int, count: int) -> list[int]:
    return [k * total // count for k in range(count)]


def ours(path: Path, idx: list[int], **resize: Any) -> list[np.ndarray]:
    AtIndices.indices = idx
    clip = AtIndices().sample(vidtt.VideoSource.of(path), AtIndices.options_model(**resize))
    ours.decoded = clip.metadata["decoded_frames"]  # type: ignore[attr-defined]
    return [np.asarray(f) for f in clip.frames]


def seed_recipe(path: Path, count: int) -> tuple[list[int], list[np.ndarray]]:
    """The guide's sampler: decode every frame with OpenCV, convert each, keep every k-th."""
    import cv2
    from PIL import Image

    video = cv2.VideoCapture(str(path))
    total = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    interval = total // count
    kept, frames = [], []
    for i in range(total):
        ok, frame = video.read()
        if not ok:
            continue
        image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if i % interval == 0:
            kept.append(i)
            frames.append(image)
    video.release()
    return kept[:count], [np.asarray(f) for f in frames[:count]]


def transformers_pyav(path: Path, count: int) -> list[np.ndarray]:
    from transformers.video_utils import load_video

    video, _ = load_video(str(path), num_frames=count, backend="pyav")
    return list(video)


def decord_peer(path: Path, idx: list[int]) -> list[np.ndarray]:
    import decord

    return list(decord.VideoReader(str(path)).get_batch(idx).asnumpy())


def torchcodec_peer(path: Path, idx: list[int], threads: int) -> list[np.ndarray]:
    from torchcodec.decoders import VideoDecoder

    decoder = VideoDecoder(
        str(path), seek_mode="exact", dimension_order="NHWC", num_ffmpeg_threads=threads
    )
    return list(decoder.get_frames_at(idx).data.numpy())


def measure(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median seconds and peak extra resident MiB over `runs` calls after one warm-up."""
    result = fn()
    process = psutil.Process()
    times, peaks = [], []
    for _ in range(runs):
        base = process.memory_info().rss
        peak = [base]
        done = threading.Event()

        def watch(peak: list[int] = peak, done: threading.Event = done) -> None:
            while not done.wait(0.002):
                peak[0] = max(peak[0], process.memory_info().rss)

        watcher = threading.Thread(target=watch)
        watcher.start()
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
        done.set()
        watcher.join()
        peaks.append((max(peak[0], process.memory_info().rss) - base) / 2**20)
    return statistics.median(times), max(peaks), result


def difference(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return "shape differs"
    diffs = [np.abs(x.astype(int) - y.astype(int)) for x, y in zip(a, b)]
    worst = max(float(d.mean()) for d in diffs)
    return "identical" if worst == 0 else f"mean |diff| {worst:.2f}"


def peers(path: Path, count: int, total: int) -> dict[str, tuple[Callable[[], Any], Any]]:
    idx = arange(total, count)
    table: dict[str, tuple[Callable[[], Any], Any]] = {
        "vidtt uniform": (lambda: ours(path, idx), idx),
        "vidtt uniform, max_side=448": (lambda: ours(path, idx, max_side=448), None),
        "seed recipe (OpenCV)": (lambda: seed_recipe(path, count), "seed"),
        "transformers load_video (pyav)": (lambda: transformers_pyav(path, count), idx),
    }
    try:
        import decord  # noqa: F401

        table["decord"] = (lambda: decord_peer(path, idx), idx)
    except ImportError:
        pass
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401

        table["torchcodec exact"] = (lambda: torchcodec_peer(path, idx, 1), idx)
        table["torchcodec exact, threads=0"] = (lambda: torchcodec_peer(path, idx, 0), idx)
    except (ImportError, OSError, RuntimeError):
        pass
    return table


def run_file(name: str, runs: int) -> list[str]:
    spec = FILES[name]
    path = DATA / name
    if not path.exists():
        print(f"making {path} ...", flush=True)
        make_video(path, **spec)
    total = vidtt.sample(path, num_frames=1).info.frame_count
    rows = []
    for count in (8, 32):
        reference = None
        for peer, (fn, idx) in peers(path, count, total).items():
            slow = peer.startswith("seed")
            seconds, peak, out = measure(fn, 1 if slow else runs)
            decoded: Any = "-"
            if peer.startswith("vidtt"):
                decoded = f"{ours.decoded / count:.1f}"  # type: ignore[attr-defined]
            elif slow:
                decoded = f"{total / count:.1f}"
            elif peer.startswith("transformers"):
                decoded = f"{(idx[-1] + 1) / count:.1f}"
            if peer == "vidtt uniform":
                reference, check = out, "reference"
            elif idx == "seed":
                kept, frames = out
                check = difference(frames, ours(path, kept))
                out = frames
            elif idx is None:
                check = "resized"
            else:
                check = difference(out, reference)
            rows.append(
                f"| {name} | {count} | {peer} | {seconds:.3f} | {peak:.0f} | {decoded} | {check} |"
            )
            print(rows[-1], flush=True)
        for sampler, options in (
            ("keyframe", {"max_frames": count}),
            ("interval", {"fps": 1, "max_frames": count}),
        ):
            seconds, peak, clip = measure(
                lambda s=sampler, o=options: vidtt.sample(path, s, **o), runs
            )
            ratio = clip.metadata["decoded_frames"] / len(clip)
            rows.append(
                f"| {name} | {count} | vidtt {sampler} ({len(clip)} frames) | "
                f"{seconds:.3f} | {peak:.0f} | {ratio:.1f} | - |"
            )
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only the 60 s 1080p clip")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)
    print("| file | frames | peer | median s | peak MiB | decoded/returned | frames vs vidtt |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in FILES:
        if not args.quick or name in QUICK:
            run_file(name, args.runs)


if __name__ == "__main__":
    main()
