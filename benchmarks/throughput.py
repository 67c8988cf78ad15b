"""Request throughput: `vidtt run` against a plain `Pipeline.ask` loop and the seed recipe.

    python benchmarks/throughput.py [--videos 8] [--questions 3] [--tokens 16] [--runs 3]

The workload: `--videos` videos (854x480 H.264 with B-frames, 8 s and more at 30 fps: video n
has 240 + 8n frames, so no two show the same sampled frames; made once in benchmarks/data/)
with `--questions` questions each, 8 frames per video at max_side 384, on a
llava-interleave-shaped model with random weights, small enough for a CPU (SigLIP tower on
384 px images in 48 px patches: 64 tokens a frame; Qwen2 text model; built offline into
benchmarks/data/). Every variant generates exactly `--tokens` new tokens (min = max, so the end
token is ignored) and does the same work:

  (a) seed recipe: OpenCV decodes every frame, keeps 8, a hand-built prompt with one `<image>`
      per frame, the processor, `generate`; one request at a time (skipped without OpenCV);
  (b) a sequential `Pipeline.ask` loop, frame cache off (each question decodes its video);
  (c) a sequential `Pipeline.ask` loop with the default frame cache;
  (d) `vidtt run`'s job runner (workers sampling ahead, batches, the frame cache) on a JSONL
      file, in this process with the model already loaded (the CLI adds only its start-up).

The model is loaded once; variants take turns run by run; the table shows the median
requests per second and each variant's ratio to (b).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
FRAMES = 8
QUESTIONS = ["What is happening?", "Which colours do you see?", "Describe the motion in it."]


def make_assets(videos: int) -> tuple[list[Path], Path]:
    from vidtt.testing import make_video
    from vidtt.testing.models import make_tiny_llava

    DATA.mkdir(exist_ok=True)
    paths = []
    for n in range(videos):  # each shows other frames: n adds 8 (frame k shows its number)
        path = DATA / f"distinct-{n}.mp4"
        if not path.exists():
            make_video(
                path,
                frames=240 + 8 * n,
                fps=30,
                size=(854, 480),
                gop=60,
                options={"preset": "veryfast"},
            )
        paths.append(path)
    model = DATA / "throughput-llava"
    if not (model / "config.json").exists():
        make_tiny_llava(model, context=2048, image_size=384, patch_size=48, hidden=128, layers=4)
    return paths, model


def workload(paths: list[Path], questions: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{p.stem}-{q}", "videos": [str(p)], "question": QUESTIONS[q % len(QUESTIONS)]}
        for p in paths
        for q in range(questions)
    ]


def seed_recipe(model: Any, processor: Any, requests: list[dict[str, Any]], tokens: int) -> None:
    import cv2
    from PIL import Image

    for request in requests:
        capture = cv2.VideoCapture(request["videos"][0])
        total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        step, frames, index = max(1, total // FRAMES), [], 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % step == 0 and len(frames) < FRAMES:
                image = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
                image.thumbnail((384, 384))
                frames.append(image)
            index += 1
        capture.release()
        prompt = (
            f"<|im_start|>user\n{'<image>' * len(frames)}{request['question']}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )
        inputs = processor(text=prompt, images=frames, return_tensors="pt")
        model.generate(**inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False)


def ask_loop(pipe: Any, requests: list[dict[str, Any]]) -> None:
    for request in requests:
        pipe.ask(request["videos"], request["question"])


def job_run(pipe: Any, requests: list[dict[str, Any]], batch: int, workers: int) -> None:
    from vidtt.jobs.local import plan_job, run_jobs

    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        source.write_text("".join(json.dumps(r) + "\n" for r in requests))
        job = plan_job(source, output)
        summary = run_jobs(pipe, job, workers=workers, batch_size=batch, progress=False)
        assert summary.answered == len(requests), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    import torch

    import vidtt
    from vidtt.media.frame_cache import FrameCache

    paths, model_dir = make_assets(args.videos)
    requests = workload(paths, args.questions)
    settings = dict(
        model=str(model_dir),
        backend="cpu",
        sampler_options={"num_frames": FRAMES, "max_side": 384},
        generation={"max_new_tokens": args.tokens, "min_new_tokens": args.tokens},
    )
    base = vidtt.Pipeline(**settings, cache=FrameCache(0))
    engine = base.engine

    def fresh(cache: bool) -> Any:  # a new frame cache per run: nothing carried over
        return vidtt.Pipeline(
            **settings, engine=engine, cache=FrameCache() if cache else FrameCache(0)
        )

    variants = {
        "(b) Pipeline.ask loop, no frame cache": lambda: ask_loop(fresh(False), requests),
        "(c) Pipeline.ask loop, frame cache": lambda: ask_loop(fresh(True), requests),
        f"(d) vidtt run (batch {args.batch_size}, {args.workers} workers)": lambda: job_run(
            fresh(True), requests, args.batch_size, args.workers
        ),
    }
    try:
        import cv2  # noqa: F401

        variants = {
            "(a) seed recipe (OpenCV, one at a time)": lambda: seed_recipe(
                engine.model, engine.processor, requests, args.tokens
            ),
            **variants,
        }
    except ImportError:
        print("(a) skipped: pip install opencv-python-headless to include the seed recipe")

    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for _ in range(args.runs):
            for name, run in variants.items():
                started = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - started)
    report(times, len(requests), args)


def report(times: dict[str, list[float]], count: int, args: argparse.Namespace) -> None:
    reference = statistics.median(times[next(n for n in times if n.startswith("(b)"))])
    print(
        f"\n{count} requests ({args.videos} videos x {args.questions} questions), {FRAMES} frames "
        f"at max_side 384, {args.tokens} new tokens each, median of {args.runs} runs\n"
    )
    print("| variant | seconds | requests/s | vs (b) |\n|---|---:|---:|---:|")
    for name, values in times.items():
        seconds = statistics.median(values)
        print(f"| {name} | {seconds:.2f} | {count / seconds:.2f} | {reference / seconds:.2f}x |")
    print(
        "\ncommand: python benchmarks/throughput.py "
        f"--videos {args.videos} --questions {args.questions} --tokens {args.tokens} "
        f"--runs {args.runs} --batch-size {args.batch_size} --workers {args.workers}"
    )


if __name__ == "__main__":
    main()
