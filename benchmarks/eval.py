"""`vidtt eval` against `vidtt run` on the same requests, and a sweep against separate runs.

    python benchmarks/eval.py [--videos 8] [--questions 4] [--tokens 8] [--runs 3]

The workload of benchmarks/throughput.py (its model and videos, made by its `make_assets`):
`--videos` videos with `--questions` multiple-choice questions each (one's own JSONL set),
`--frames` frames at max_side 384 (64 visual tokens a frame), exactly `--tokens` new tokens.
Every command is the installed console script in its own process (model loading included, as
a user runs it), in a fresh output folder; variants take turns, run by run.

1. `vidtt eval SET CONFIG --output DIR` against `vidtt run CONFIG --input DIR/requests.jsonl
   --output ANSWERS` on the requests that eval wrote (the same prompts and options), each with
   a fresh, empty frame cache folder (VIDTT_CACHE_DIR). Goal: eval within 5% of run.
2. `vidtt eval SET CONFIG --sweep frames=A,B,C` against three `vidtt eval SET CONFIG --frames N`
   commands one after the other, the three sharing one fresh frame cache folder as a user's
   default cache is shared. The predictions of every setting are compared with the separate
   run's. Goal: the sweep faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

VIDTT = str(Path(sys.executable).with_name("vidtt"))
MAX_SIDE = 384
QUESTIONS = [
    ("What is shown in the video?", ["a number counting up", "a cat", "a lake", "a car"]),
    ("What colour is the background?", ["grey", "green", "red", "blue"]),
    ("How does the picture change over time?", ["the number grows", "it does not", "it fades"]),
    ("What moves in this video?", ["nothing", "a square", "a ball", "a dog", "a bird"]),
]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--questions", type=int, default=4, choices=range(1, 5))
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--sweep", default="4,8,16", help="the frame counts of part 2")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    return parser.parse_args()


def write_set(folder: Path, videos: list[Path], questions: int) -> Path:
    rows = []
    for video in videos:
        for number, (question, options) in enumerate(QUESTIONS[:questions]):
            row = {"id": f"{video.stem}-{number}", "video": str(video), "question": question}
            rows.append({**row, "options": options, "answer": "A"})
    path = folder / "set.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_config(folder: Path, model: Path, frames: int, tokens: int) -> Path:
    config = {
        "model": str(model),
        "backend": "cpu",
        "dtype": "float32",
        "sampler_options": {"num_frames": frames, "max_side": MAX_SIDE},
        "generation": {"max_new_tokens": tokens, "min_new_tokens": tokens},
    }
    path = folder / "pipe.json"
    path.write_text(json.dumps(config))
    return path


def timed(args: list[str], cache: Path) -> float:
    """Seconds the console script `vidtt ARGS` took; it must succeed."""
    env = {**os.environ, "VIDTT_CACHE_DIR": str(cache), "VIDTT_BACKEND": "cpu"}
    started = time.perf_counter()
    done = subprocess.run([VIDTT, *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"vidtt {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return seconds


def eval_against_run(work: Path, questions: Path, config: Path, run: int) -> dict[str, float]:
    """Part 1, one run: eval, then run on eval's requests, each with an empty cache folder."""
    out = work / f"eval-{run}"
    seconds = {"eval": timed(["eval", str(questions), str(config), "--output", str(out),
                              "--quiet"], work / f"cache-eval-{run}")}  # fmt: skip
    answers = work / f"run-{run}.jsonl"
    seconds["run"] = timed(
        ["run", str(config), "--input", str(out / "requests.jsonl"), "--output", str(answers),
         "--quiet"], work / f"cache-run-{run}",
    )  # fmt: skip
    same = _texts(out / "answers.jsonl") == _texts(answers)
    if not same:
        raise SystemExit("eval and run answered the same requests differently")
    return seconds


def _texts(path: Path) -> dict[str, Any]:
    return {r["id"]: r["token_ids"] for r in map(json.loads, path.read_text().splitlines())}


def sweep_against_runs(
    work: Path, questions: Path, config: Path, counts: list[str], run: int
) -> dict[str, float]:
    """Part 2, one run: the sweep in one command, then one command per frame count."""
    out = work / f"sweep-{run}"
    sweep = ["eval", str(questions), str(config), "--output", str(out), "--quiet"]
    seconds = {"sweep": timed([*sweep, "--sweep", f"frames={','.join(counts)}"],
                              work / f"cache-sweep-{run}")}  # fmt: skip
    total = 0.0
    for count in counts:
        alone = work / f"alone-{run}-{count}"
        total += timed(["eval", str(questions), str(config), "--output", str(alone), "--quiet",
                        "--frames", count], work / f"cache-alone-{run}")  # fmt: skip
        swept = _predictions(out / f"frames={count}" / "predictions.jsonl")
        if swept != _predictions(alone / "predictions.jsonl"):
            raise SystemExit(f"the sweep's frames={count} predicted otherwise than its own run")
    seconds["separate"] = total
    return seconds


def _predictions(path: Path) -> dict[str, Any]:
    lines = map(json.loads, path.read_text().splitlines())
    return {p["id"]: (p["prediction"], p["frame_times"]) for p in lines}


def report(part: str, runs: list[dict[str, float]], ours: str, peer: str, count: int) -> None:
    mine = statistics.median(r[ours] for r in runs)
    theirs = statistics.median(r[peer] for r in runs)
    print(f"\n{part} (median of {len(runs)} runs, {count} questions each)")
    print("| command | seconds | questions/s |\n| --- | --- | --- |")
    for name, value in ((ours, mine), (peer, theirs)):
        print(f"| {name} | {value:.2f} | {count / value:.2f} |")
    print(f"{ours} / {peer} time: {mine / theirs:.3f}x (all runs: "
          + ", ".join(f"{r[ours] / r[peer]:.3f}" for r in runs) + ")")  # fmt: skip


def main() -> None:
    from throughput import make_assets

    args = parse_args()
    videos, model = make_assets(args.videos)
    counts = [c.strip() for c in args.sweep.split(",")]
    print(
        f"vidtt eval benchmark: {args.videos} videos x {args.questions} questions, "
        f"{args.frames} frames at max_side {MAX_SIDE}, {args.tokens} new tokens, CPU"
    )
    print("command: python benchmarks/eval.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory(prefix="vidtt-eval-bench-") as folder:
        work = Path(folder)
        questions = write_set(work, videos, args.questions)
        config = write_config(work, model, args.frames, args.tokens)
        count = args.videos * args.questions
        first = [eval_against_run(work, questions, config, run) for run in range(args.runs)]
        report("1. vidtt eval against vidtt run, same requests", first, "eval", "run", count)
        second = [
            sweep_against_runs(work, questions, config, counts, run) for run in range(args.runs)
        ]
        title = f"2. --sweep frames={','.join(counts)} against {len(counts)} separate evals"
        report(title, second, "sweep", "separate", count * len(counts))


if __name__ == "__main__":
    main()
