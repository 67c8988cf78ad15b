"""`vidtt run --ray local` against a plain `vidtt run` on the same input: the overhead as a ratio.

    python benchmarks/ray_overhead.py [--videos 4] [--questions 8] [--tokens 16] [--actors 1]
                                      [--model DIR] [--backend auto] [--batch-size 8]

Builds the tiny llava-interleave-shaped model and the videos of benchmarks/throughput.py
(offline, into benchmarks/data/, unless --model is given), writes `--videos` x `--questions`
requests and a config (8 frames, longer side 384 px, exactly `--tokens` new tokens a request),
then times both commands end to end, as a user waits for them: process start, model load (and
for Ray the private cluster and its actors), sampling, generation, the output file. Prints both
commands, both times, requests per second and the ratio Ray / local, and checks that the two
outputs hold the same token ids for every request (greedy decoding).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))


def timed(command: list[str]) -> float:
    print("$", shlex.join(command), flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed


def token_ids(path: Path) -> dict[str, list[int]]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {str(r["id"]): r["token_ids"] for r in records}


def main() -> int:
    from throughput import make_assets, workload

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=4)
    parser.add_argument("--questions", type=int, default=8, help="questions per video")
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--actors", default="1", help="--actors for the Ray run")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", help="a model folder or hub id (default: the tiny model)")
    parser.add_argument("--backend", default="auto")
    args = parser.parse_args()

    paths, tiny = make_assets(args.videos)
    requests = workload(paths, args.questions)
    vidtt = str(Path(sys.executable).with_name("vidtt"))
    with tempfile.TemporaryDirectory(prefix="vidtt-ray-bench-") as folder:
        work = Path(folder)
        config = work / "pipe.json"
        config.write_text(
            json.dumps(
                {
                    "model": args.model or str(tiny),
                    "backend": args.backend,
                    "sampler_options": {"num_frames": 8, "max_side": 384},
                    "generation": {"max_new_tokens": args.tokens, "min_new_tokens": args.tokens},
                }
            )
        )
        inputs = work / "requests.jsonl"
        inputs.write_text("".join(json.dumps(r) + "\n" for r in requests))
        common = [vidtt, "run", str(config), "--input", str(inputs), "--quiet"]
        common += ["--batch-size", str(args.batch_size)]
        local = timed([*common, "--output", str(work / "local.jsonl")])
        ray_args = ["--ray", "local", "--actors", args.actors]
        on_ray = timed([*common, "--output", str(work / "ray.jsonl"), *ray_args])
        if token_ids(work / "local.jsonl") != token_ids(work / "ray.jsonl"):
            raise SystemExit("the Ray run's answers differ from the local run's")
    n = len(requests)
    print(f"local:      {local:.2f} s ({n / local:.2f} requests/s)")
    print(f"ray local:  {on_ray:.2f} s ({n / on_ray:.2f} requests/s)")
    print(f"ratio ray/local: {on_ray / local:.2f}x ({n} requests, answers identical)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
