"""Shot detection: vidtt's scene sampler against a plain decode and PySceneDetect.

    pip install scenedetect opencv-python-headless   # the peer (optional: skipped without it)
    python benchmarks/scenes.py [--seconds 30] [--size 640x360] [--runs 3] [--seed 0]

Writes one synthetic H.264 video per set of `vidtt.testing.scenes` (hard cuts, fades through
black, dissolves, flashes inside shots, static shots, camera motion, steady pans with a moving
object; x264 "veryfast" with its own keyframe choice, as a real encoder's) into a temporary
folder, then, in this one process, finds the cuts with each detector at its defaults
(PySceneDetect: ContentDetector, threshold 27, 15-frame minimum scene; vidtt: `find_shots`,
which reports every shot it detects) and scores them against the known cuts: a found cut
matches a true one within 2 frames (each true cut matched once). "plain decode" decodes every
frame with PyAV (FFmpeg's own threads, no conversion) and finds nothing: `x decode` is each
row's seconds over its. Times are the median of `--runs` runs, taking turns.
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
    return [shot.first_frame for shot in find_shots(str(path))[1:]]


def plain_decode(path: Path) -> list[int]:
    """Every frame decoded and dropped: the floor any detector that looks at every frame has."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return []


def peers() -> dict[str, Callable[[Path], list[int]]]:
    """The detectors to time: ContentDetector only where PySceneDetect is installed."""
    found: dict[str, Callable[[Path], list[int]]] = {
        "plain decode": plain_decode,
        "vidtt scene": vidtt_cuts,
    }
    try:
        import scenedetect  # noqa: F401
    except ImportError:
        print("(PySceneDetect is not installed: ContentDetector skipped)")
    else:
        found["ContentDetector"] = pyscenedetect_cuts
    return found


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
    size = (width, height)
    detectors = peers()
    print("| set | cuts | detector | precision | recall | F1 | seconds | x decode |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory() as folder:
        for name in SETS:
            video = make_scene_video(
                Path(folder) / f"{name}.mp4", name, args.seconds, args.fps, size, args.seed
            )
            times: dict[str, list[float]] = {peer: [] for peer in detectors}
            found: dict[str, list[int]] = {}
            for _ in range(args.runs):
                for peer, detector in detectors.items():
                    found[peer], seconds = timed(detector, video.path)
                    times[peer].append(seconds)
            decode = statistics.median(times["plain decode"])
            for peer in detectors:
                median = statistics.median(times[peer])
                scores = "| - | - | -" if peer == "plain decode" else "| {:.2f} | {:.2f} | {:.2f}"
                print(
                    f"| {name} | {len(video.cuts)} | {peer} "
                    + scores.format(*score(found[peer], video.cuts))
                    + f" | {median:.3f} | {median / decode:.2f} |"
                )


if __name__ == "__main__":
    main()
