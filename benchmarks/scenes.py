"""Shot detection: vidtt's scene sampler against PySceneDetect's ContentDetector.

    pip install scenedetect opencv-python-headless   # the peer: for this benchmark only
    python benchmarks/scenes.py [--seconds 30] [--size 640x360] [--runs 3] [--seed 0]

Writes one synthetic H.264 video per set of `vidtt.testing.scenes` (hard cuts, fades through
black, dissolves, flashes inside shots, static shots, camera motion; x264 "veryfast" with its
own keyframe choice, as a real encoder's) into a temporary folder, then, in this one process,
finds the cuts with each detector at its defaults (PySceneDetect: ContentDetector, threshold
27, 15-frame minimum scene; vidtt: `find_shots`, min_scene 0.5 s, the same 15 frames at 30
fps) and scores them against the known cuts: a found cut matches a true one within 2 frames
(each true cut matched once). Times are the median of `--runs` runs, taking turns.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from vidtt.samplers.scene import find_shots
from vidtt.testing.scenes import SETS, make_scene_video

TOLERANCE = 2  # frames


def vidtt_cuts(path: Path) -> list[int]:
    return [shot.first_frame for shot in find_shots(str(path), min_scene=0.5)[1:]]


def pyscenedetect_cuts(path: Path) -> list[int]:
    from scenedetect import ContentDetector, detect

    scenes = detect(str(path), ContentDetector())
    return [start.frame_num for start, _ in scenes[1:]]


def score(found: list[int], truth: list[int]) -> tuple[float, float, float]:
    """Precision, recall and F1 of `found` cuts against `truth`, within `TOLERANCE` frames."""
    unmatched = sorted(truth)
    hits = 0
    for cut in sorted(found):
        near = [t for t in unmatched if abs(t - cut) <= TOLERANCE]
        if near:
            unmatched.remove(min(near, key=lambda t: abs(t - cut)))
            hits += 1
    precision = hits / len(found) if found else float(not truth)
    recall = hits / len(truth) if truth else float(not found)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def timed(detector: Callable[[Path], list[int]], path: Path) -> tuple[list[int], float]:
    began = time.perf_counter()
    cuts = detector(path)
    return cuts, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    peers = {"vidtt scene": vidtt_cuts, "ContentDetector": pyscenedetect_cuts}
    print("| set | cuts | detector | precision | recall | F1 | seconds | speed-up |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for name in SETS:
            video = make_scene_video(
                Path(folder) / f"{name}.mp4",
                name,
                args.seconds,
                args.fps,
                (width, height),
                args.seed,
            )
            times: dict[str, list[float]] = {peer: [] for peer in peers}
            found: dict[str, list[int]] = {}
            for _ in range(args.runs):
                for peer, detector in peers.items():
                    found[peer], seconds = timed(detector, video.path)
                    times[peer].append(seconds)
            slowest = statistics.median(times["ContentDetector"])
            for peer in peers:
                p, r, f1 = score(found[peer], video.cuts)
                median = statistics.median(times[peer])
                print(
                    f"| {name} | {len(video.cuts)} | {peer} | {p:.2f} | {r:.2f} | {f1:.2f} | "
                    f"{median:.3f} | {slowest / median:.1f}x |"
                )


if __name__ == "__main__":
    main()
