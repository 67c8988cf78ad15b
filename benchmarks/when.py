"""Finding when: the time a `--when` answer takes against a plain ask, and grounding scored by
`vidtt eval` on generated videos whose truth is known.

    python benchmarks/when.py [--videos 6] [--runs 5] [--frames 8]

Videos: `--videos` clips of 20 s (854x480 H.264, 30 fps, made here with PyAV): grey, with a red
square shown over a known stretch (a different one per video). The model: the throughput
benchmark's (llava-interleave shape, random weights), loaded once, on the CPU.

1. Time, per video, both taking turns, frame cache and kept indexes emptied before each:
   (a) `Pipeline.ask(video, question)`, (b) the same with `spans=True`. The model is made to
   write a given answer (a sequence bias) so that both generate the same tokens: "5 - 7
   seconds" (a span: (b) reads it and looks again, one narrowing pass) and "a red square"
   (no time: (b) reads nothing and stops). Reported: median seconds and the ratio (b)/(a).
2. Grounding: `vidtt eval SET --output DIR` on a JSONL set of the videos, each asking when the
   red square is shown, its truth the stretch it was drawn. The random-weight model cannot see
   the square, so its mIoU and R@0.5 are the floor a model that guesses gets; beside them, the
   same scores for answering "the whole video" for every question (what a span-less tool
   gives), and for the truth itself sent through the same reading and narrowing path (an
   oracle answer made with a sequence bias per question), which must score 1.0: the path adds
   no error of its own.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

VIDTT = str(Path(sys.executable).with_name("vidtt"))
SECONDS, FPS, SIZE = 20, 30, (854, 480)
QUESTION = "When is the red square shown?"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--frames", type=int, default=8)
    return parser.parse_args()


def shown_at(number: int) -> tuple[float, float]:
    """The stretch video `number` shows the red square: 2-4 s long, somewhere in the clip."""
    start = 1.0 + (number * 5.3) % (SECONDS - 6)
    return (round(start, 1), round(start + 2 + number % 3, 1))


def make_clip(path: Path, shown: tuple[float, float]) -> Path:
    from vidtt.testing import make_square_video

    return make_square_video(path, shown, seconds=SECONDS, fps=FPS, size=SIZE)


def saying(tokenizer: Any, text: str) -> list[list[Any]]:
    """A sequence bias that makes greedy decoding write `text`, then end."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    return [[ids[: k + 1], 1e4 * (k + 1)] for k in range(len(ids))]


def timed(pipe: Any, video: Path, spans: bool, bias: Any) -> tuple[float, Any]:
    from vidtt.media.decode import kept_indexes

    pipe.cache.clear()
    kept_indexes.forget()
    started = time.perf_counter()
    answer = pipe.ask(str(video), QUESTION, spans=spans, max_new_tokens=24, sequence_bias=bias)
    return time.perf_counter() - started, answer


def timing(pipe: Any, videos: list[Path], runs: int) -> None:
    tokenizer = pipe.processor.tokenizer
    print("\n1. A --when answer against a plain ask (median seconds per question)")
    print("| the answer | plain ask | spans=True | ratio | narrowing passes |")
    print("| --- | --- | --- | --- | --- |")
    for text in ("5 - 7 seconds", "a red square"):
        bias = saying(tokenizer, text)
        timed(pipe, videos[0], True, bias)  # warm-up
        plain, when, passes = [], [], 0
        for _ in range(runs):
            for video in videos:
                plain.append(timed(pipe, video, False, bias)[0])
                seconds, answer = timed(pipe, video, True, bias)
                when.append(seconds)
                passes = len(answer.narrowed)
        a, b = statistics.median(plain), statistics.median(when)
        print(f'| "{text}" | {a:.3f} | {b:.3f} | {b / a:.2f}x | {passes} |')


def write_set(folder: Path, videos: list[Path]) -> Path:
    rows = [
        {"id": f"v{n}", "video": str(video), "question": "the red square is shown",
         "spans": [list(shown_at(n))]}
        for n, video in enumerate(videos)
    ]  # fmt: skip
    path = folder / "grounding.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def grounding(pipe: Any, model: Path, videos: list[Path], folder: Path, frames: int) -> None:
    from vidtt.eval.grounding import grounding_scores

    questions = write_set(folder, videos)
    config = folder / "pipe.json"
    config.write_text(json.dumps({"model": str(model), "backend": "cpu", "dtype": "float32",
                                  "sampler_options": {"num_frames": frames},
                                  "generation": {"max_new_tokens": 16}}))  # fmt: skip
    out = folder / "eval"
    done = subprocess.run(
        [VIDTT, "eval", str(questions), str(config), "--output", str(out), "--quiet"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    scores = json.loads((out / "scores.json").read_text())["grounding"]
    truths = [shown_at(n) for n in range(len(videos))]
    whole = grounding_scores([((0.0, float(SECONDS)), truth) for truth in truths])
    tokenizer = pipe.processor.tokenizer
    oracle = []
    for video, truth in zip(videos, truths):
        bias = saying(tokenizer, f"{truth[0]} - {truth[1]} seconds")
        found = timed(pipe, video, True, bias)[1].spans
        oracle.append(((found[0].start, found[0].end) if found else None, truth))
    told = grounding_scores(oracle)  # type: ignore[arg-type]
    print(f"\n2. Grounding on {len(videos)} generated videos (truth: the red square's stretch)")
    print("| answers | mIoU | R@0.3 | R@0.5 | R@0.7 | no span |")
    print("| --- | --- | --- | --- | --- | --- |")
    rows = [("vidtt eval, the random-weight model", scores, scores["no_answer"]),
            ("the whole video, every question", whole, 0),
            ("the truth, through the same reading and narrowing", told, 0)]  # fmt: skip
    for name, s, none in rows:
        print(f"| {name} | {s['miou']:.3f} | {s['r@0.3']:.2f} | {s['r@0.5']:.2f} | "
              f"{s['r@0.7']:.2f} | {none} |")  # fmt: skip


def main() -> None:
    from throughput import make_assets

    import vidtt

    args = parse_args()
    _, model = make_assets(1)
    print(f"vidtt when benchmark: {args.videos} videos of {SECONDS} s ({SIZE[0]}x{SIZE[1]}, "
          f"{FPS} fps), {args.frames} frames, CPU")  # fmt: skip
    print("command: python benchmarks/when.py " + " ".join(sys.argv[1:]))
    pipe = vidtt.Pipeline(
        model=str(model), backend="cpu", dtype="float32",
        sampler_options={"num_frames": args.frames},
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="vidtt-when-bench-") as name:
        folder = Path(name)
        videos = [make_clip(folder / f"v{n}.mp4", shown_at(n)) for n in range(args.videos)]
        timing(pipe, videos, args.runs)
        grounding(pipe, model, videos, folder, args.frames)


if __name__ == "__main__":
    main()
