"""Sampling speed and memory: vidtt against the seed recipe, transformers, decord and torchcodec.

    python benchmarks/sampling.py [--runs 3] [--quick | --files NAME ...] [--memory]

Makes its videos once in benchmarks/data/ (H.264 x264 "veryfast", with B-frames like most real
files: 60 s 1080p with a 2 s GOP, 10 s 720p with a single keyframe, 854x480, 1366x768, 5 min
720p; H.264 baseline profile (no B-frames) with a single keyframe; VP9; HEVC; MPEG-TS),
then, in this one process and warm, takes the median of `--runs` timings of each peer (taking
turns run by run) for 8 and 32 frames at the same indices (transformers' rule, floor(k * N / n);
the seed recipe keeps every (N // n)-th frame, as the guide does, and runs once). Every peer's
frames are compared with vidtt's frames at the same indices. Peak memory is the process's
resident memory above its level before the call, sampled every 2 ms; in the timing table memory
freed by earlier calls is reused, so `--memory` measures each call in a fresh process. Peers not
installed are skipped (decord: `pip install decord`; torchcodec needs FFmpeg's shared libraries).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import psutil

import vidtt
from vidtt.plugin_api import PyAVSampler
from vidtt.testing import make_video

DATA = Path(__file__).parent / "data"
X264 = {"preset": "veryfast"}  # B-frames, as most real H.264 files have
BASELINE = {"preset": "veryfast", "profile": "baseline"}  # no B-frames (phones, cameras, WebRTC)
FILES = {
    "60s-1080p-gop2s.mp4": dict(frames=1800, fps=30, size=(1920, 1080), gop=60, options=X264),
    "10s-720p-1key.mp4": dict(frames=300, fps=30, size=(1280, 720), gop=100000, options=X264),
    "10s-720p-baseline-1key.mp4": dict(
        frames=300, fps=30, size=(1280, 720), gop=100000, options=BASELINE
    ),
    "20s-480p.mp4": dict(frames=600, fps=30, size=(854, 480), options=X264),
    "20s-768p.mp4": dict(frames=600, fps=30, size=(1366, 768), gop=250, options=X264),
    "20s-720p-vp9.webm": dict(frames=600, fps=30, size=(1280, 720), gop=240),
    "20s-720p-hevc.mp4": dict(
        frames=600, fps=30, size=(1280, 720), codec="libx265", options={"preset": "ultrafast"}
    ),
    "20s-720p.ts": dict(frames=600, fps=30, size=(1280, 720), gop=60, options=X264),
    "5min-720p.mp4": dict(frames=9000, fps=30, size=(1280, 720), gop=250, options=X264),
}
QUICK = {"60s-1080p-gop2s.mp4", "10s-720p-baseline-1key.mp4", "20s-720p-vp9.webm", "20s-720p.ts"}


class AtIndices(PyAVSampler):
    """vidtt's decoder at given indices (to compare with peers that pick their own)."""

    name = "at-indices"
    indices: ClassVar[list[int]] = []

    def choose(self, index, span, options, label, warnings):
        return sorted(set(self.indices))


def arange(total: int, count: int) -> list[int]:
    return [k * total // count for k in range(count)]


def ours(path: Path, idx: list[int], **resize: Any) -> vidtt.Clip:
    """vidtt's frames (one uint8 array, its product) at `idx`."""
    AtIndices.indices = idx
    return AtIndices().sample(vidtt.VideoSource.of(path), AtIndices.options_model(**resize))


def arrays(clip: vidtt.Clip) -> list[np.ndarray]:
    return list(clip.array)


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


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """Seconds and peak extra resident MiB of one call."""
    process = psutil.Process()
    base = process.memory_info().rss
    peak = [base]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.002):
            peak[0] = max(peak[0], process.memory_info().rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    started = time.perf_counter()
    try:
        result = fn()
        seconds = time.perf_counter() - started
    finally:  # a peer that fails must not leave its watcher polling (and slowing the rest)
        done.set()
        watcher.join()
    return seconds, (max(peak[0], process.memory_info().rss) - base) / 2**20, result


def measure(
    table: dict[str, Callable[[], Any]], runs: int, once: set[str], where: str = "| - | - |"
) -> dict[str, tuple[float, float, Any]]:
    """Median time and worst peak per peer; after a warm-up call each, the peers take turns
    run by run so that drift in machine speed hits all alike. Peers in `once` run once."""
    results: dict[str, Any] = {}
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in table}
    for run in range(-1, runs):  # run -1: the warm-up
        for name, fn in list(table.items()):
            if name in once and run != 0:
                continue
            try:
                seconds, peak, results[name] = timed(fn)
            except Exception as exc:  # a peer that cannot read this file: say so, go on
                print(f"{where} {name} | failed: {type(exc).__name__}: {str(exc)[:90]} |")
                del table[name]
                continue
            if run >= 0:
                samples[name].append((seconds, peak))
    return {
        name: (
            statistics.median(s for s, _ in samples[name]),
            max(p for _, p in samples[name]),
            results[name],
        )
        for name in table
    }


def difference(a: list[np.ndarray], b: list[np.ndarray]) -> str:
    if len(a) != len(b) or any(x.shape != y.shape for x, y in zip(a, b)):
        return "shape differs"
    diffs = [np.abs(x.astype(int) - y.astype(int)) for x, y in zip(a, b)]
    worst = max(float(d.mean()) for d in diffs)
    return "identical" if worst == 0 else f"mean |diff| {worst:.2f}"


def peers(path: Path, count: int, total: int) -> dict[str, Callable[[], Any]]:
    idx = arange(total, count)
    table: dict[str, Callable[[], Any]] = {
        "vidtt uniform": lambda: ours(path, idx),
        "vidtt uniform, max_side=448": lambda: ours(path, idx, max_side=448),
        "seed recipe (OpenCV)": lambda: seed_recipe(path, count),
        "transformers load_video (pyav)": lambda: transformers_pyav(path, count),
    }
    try:
        import decord  # noqa: F401

        table["decord"] = lambda: decord_peer(path, idx)
    except ImportError:
        pass
    try:
        from torchcodec.decoders import VideoDecoder  # noqa: F401

        table["torchcodec exact"] = lambda: torchcodec_peer(path, idx, 1)
        table["torchcodec exact, threads=0"] = lambda: torchcodec_peer(path, idx, 0)
    except (ImportError, OSError, RuntimeError):
        pass
    for sampler, options in (
        ("keyframe", {"max_frames": count}),
        ("interval", {"fps": 1, "max_frames": count}),
    ):
        table[f"vidtt {sampler}"] = lambda s=sampler, o=options: vidtt.sample(path, s, **o)
    return table


def check(name: str, out: Any, reference: vidtt.Clip, path: Path) -> str:
    """How a peer's frames compare with vidtt's at the same indices."""
    if name == "vidtt uniform":
        return "reference"
    if name.startswith("vidtt"):
        return "resized" if "max_side" in name else "-"
    if name.startswith("seed"):
        kept, frames = out
        return difference(frames, arrays(ours(path, kept)))
    return difference(out, arrays(reference))


def decoded_ratio(name: str, out: Any, count: int, total: int) -> str:
    if name.startswith("vidtt"):
        return f"{out.metadata['decoded_frames'] / len(out):.1f}"
    if name.startswith("seed"):
        return f"{total / count:.1f}"
    if name.startswith("transformers"):
        return f"{(arange(total, count)[-1] + 1) / count:.1f}"
    return "-"


def run_file(name: str, runs: int) -> None:
    path = DATA / name
    total = vidtt.sample(path, num_frames=1).info.frame_count
    for count in (8, 32):
        where = f"| {name} | {count} |"
        results = measure(peers(path, count, total), runs, {"seed recipe (OpenCV)"}, where)
        reference = results["vidtt uniform"][2]
        for peer, (seconds, peak, out) in results.items():
            label = (
                f"{peer} ({len(out)} frames)"
                if peer in ("vidtt keyframe", "vidtt interval")
                else peer
            )
            print(
                f"| {name} | {count} | {label} | {seconds:.3f} | {peak:.0f} | "
                f"{decoded_ratio(peer, out, count, total)} | "
                f"{check(peer, out, reference, path)} |",
                flush=True,
            )


def memory_table(names: list[str]) -> None:
    """Peak memory of each peer, each call in a fresh process (so nothing is reused)."""
    print("| file | frames | peer | peak MiB above the process before the call |")
    print("| --- | --- | --- | --- |")
    for name in names:
        for count in (8, 32):
            for peer in peers(DATA / name, count, 1):
                out = subprocess.run(
                    [sys.executable, __file__, "--one", name, str(count), peer],
                    capture_output=True,
                    text=True,
                )
                if out.returncode:  # a peer that cannot read this file: say so, go on
                    last = (out.stderr.strip().splitlines() or ["?"])[-1][:90]
                    print(f"| {name} | {count} | {peer} | failed: {last} |", flush=True)
                    continue
                print(f"| {name} | {count} | {peer} | {float(out.stdout):.0f} |", flush=True)


def one(name: str, count: int, peer: str) -> None:
    path = DATA / name
    total = vidtt.sample(path, num_frames=1).info.frame_count
    fn = peers(path, count, total)[peer]
    print(timed(fn)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="only four files: " + ", ".join(QUICK))
    parser.add_argument("--files", nargs="+", choices=list(FILES), help="only these files")
    parser.add_argument(
        "--memory", action="store_true", help="peak memory only, one fresh process per call"
    )
    parser.add_argument(
        "--one", nargs=3, metavar=("FILE", "FRAMES", "PEER"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.one:
        one(args.one[0], int(args.one[1]), args.one[2])
        return
    DATA.mkdir(exist_ok=True)
    names = args.files or [name for name in FILES if not args.quick or name in QUICK]
    for name in names:
        if not (DATA / name).exists():
            print(f"making {DATA / name} ...", flush=True)
            make_video(DATA / name, **FILES[name])
    if args.memory:
        memory_table(names)
        return
    print("| file | frames | peer | median s | peak MiB | decoded/returned | frames vs vidtt |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in names:
        run_file(name, args.runs)


if __name__ == "__main__":
    main()
