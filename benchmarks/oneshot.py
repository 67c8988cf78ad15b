"""One question, one process: `vidtt ask` against the seed recipe written as a script.

    python benchmarks/oneshot.py [--runs 5] [--tokens 16] [--warmup 1] [--profile]

The workload: a 720p H.264 clip (1280x720, 10 s at 30 fps, a keyframe every 2 s, made once in
benchmarks/data/), 8 frames, exactly `--tokens` new tokens (min = max, so the end token is
ignored), greedy, on the CPU, on the llava-interleave-shaped random model the throughput
benchmark uses (SigLIP tower on 384 px images in 48 px patches, Qwen2 text model; built
offline into benchmarks/data/). Each run is a fresh process, timed from just before
`subprocess.run` until it returns: interpreter start, imports, model load, decode, prompt,
generate, printing the answer, exit: the whole cost a user waits for.

  (a) the seed recipe (the transformers video-text-to-text task guide) as a script run with
      this interpreter: imports torch and transformers, OpenCV reads every frame and keeps
      every (total // 8)-th up to 8, a hand-built prompt with one `<image>` per frame,
      `AutoProcessor` and `LlavaForConditionalGeneration` from the folder, the processor,
      `generate`, prints the decoded answer (needs opencv-python-headless, else skipped);
  (b) the installed console script: `vidtt ask VIDEO -q ... --model MODEL --frames 8
      --max-new-tokens N --backend cpu --config FILE`, the config giving min_new_tokens = N.

`--warmup` untimed runs of each come first (they also check that each made N tokens); then
`--runs` paired runs, alternating which goes first. The table shows medians, minima and the
ratio (b)/(a). `--profile` runs (b) once more as `python -X importtime -m vidtt ask ...` and
prints where its start-up goes: the largest imports by cumulative time and the import time
of each top-level package by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).parent / "data"
FRAMES = 8
QUESTION = "What is happening in this video?"
RECIPE_NAME = "(a) seed recipe script"
VIDTT_NAME = "(b) vidtt ask"

# The guide's recipe, from a local file instead of a URL; the only additions are reading the
# arguments and writing the number of new tokens to stderr (so the benchmark can check it).
RECIPE = """\
import sys

import cv2
import torch
from PIL import Image
from transformers import AutoProcessor, LlavaForConditionalGeneration

video, model_id, question, tokens = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
num_frames = 8


def sample_frames(path, num_frames):
    video = cv2.VideoCapture(path)
    total_frames = int(video.get(cv2.CAP_PROP_FRAME_COUNT))
    interval = max(1, total_frames // num_frames)
    frames = []
    for i in range(total_frames):
        ret, frame = video.read()
        if not ret:
            continue
        if i % interval == 0 and len(frames) < num_frames:
            frames.append(Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
    video.release()
    return frames


processor = AutoProcessor.from_pretrained(model_id)
model = LlavaForConditionalGeneration.from_pretrained(model_id, dtype=torch.float32)
frames = sample_frames(video, num_frames)
toks = "<image>" * len(frames)
prompt = "<|im_start|>user" + toks + f"\\n{question}<|im_end|><|im_start|>assistant"
inputs = processor(text=prompt, images=frames, return_tensors="pt").to(model.device, model.dtype)
with torch.inference_mode():
    output = model.generate(
        **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False
    )
new = output[0][inputs["input_ids"].shape[1]:]
print(processor.decode(new, skip_special_tokens=True))
print(f"new_tokens={len(new)} frames={len(frames)}", file=sys.stderr)
"""


def make_assets() -> tuple[Path, Path]:
    from vidtt.testing import make_video
    from vidtt.testing.models import make_tiny_llava

    DATA.mkdir(exist_ok=True)
    video = DATA / "oneshot-720p.mp4"
    if not video.exists():
        make_video(
            video, frames=300, fps=30, size=(1280, 720), gop=60, options={"preset": "veryfast"}
        )
    model = DATA / "throughput-llava"
    if not (model / "config.json").exists():
        make_tiny_llava(model, context=2048, image_size=384, patch_size=48, hidden=128, layers=4)
    return video, model


def has_opencv() -> bool:
    done = subprocess.run([sys.executable, "-c", "import cv2"], capture_output=True)
    return done.returncode == 0


def execute(command: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} ... failed:\n{done.stderr[-3000:]}")
    return elapsed, done


def check(name: str, done: subprocess.CompletedProcess, tokens: int) -> str:
    """What one warm-up run said, after checking it made `tokens` new tokens."""
    if name == RECIPE_NAME:
        made = next(line for line in done.stderr.splitlines() if line.startswith("new_tokens="))
        count = int(made.split()[0].split("=")[1])
        answer = done.stdout.strip()
    else:
        result = json.loads(done.stdout)
        count, answer = result["usage"]["generated_tokens"], result["text"]
        made = f"new_tokens={count} frames={len(result['videos'][0]['indices'])}"
    if count != tokens:
        raise SystemExit(f"{name} made {count} new tokens, not {tokens}")
    return f"{made} answer={answer[:40]!r}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="paired timed runs")
    parser.add_argument("--tokens", type=int, default=16, help="new tokens, exactly")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs of each first")
    parser.add_argument("--profile", action="store_true", help="profile vidtt ask's imports")
    parser.add_argument("--top", type=int, default=15, help="imports to list with --profile")
    args = parser.parse_args()

    video, model = make_assets()
    work = Path(tempfile.mkdtemp(prefix="vidtt-oneshot-"))
    script = work / "recipe.py"
    script.write_text(RECIPE)
    config = work / "pipeline.yaml"
    config.write_text(
        f"generation: {{max_new_tokens: {args.tokens}, min_new_tokens: {args.tokens}}}\n"
    )
    vidtt = shutil.which("vidtt", path=str(Path(sys.executable).parent)) or shutil.which("vidtt")
    if vidtt is None:
        raise SystemExit("no vidtt console script next to this interpreter: pip install -e .")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    ask = ["ask", str(video), "-q", QUESTION, "--model", str(model), "--frames", str(FRAMES)]
    ask += ["--max-new-tokens", str(args.tokens), "--backend", "cpu", "--config", str(config)]
    commands = {VIDTT_NAME: [vidtt, *ask]}
    if has_opencv():
        recipe = [sys.executable, str(script), str(video), str(model), QUESTION, str(args.tokens)]
        commands = {RECIPE_NAME: recipe, **commands}
    else:
        print("(a) skipped: pip install opencv-python-headless to include the seed recipe")

    for n in range(args.warmup):
        for name, command in commands.items():
            extra = ["--json"] if name == VIDTT_NAME else []
            elapsed, done = execute(command + extra, env)
            print(f"warm-up {n + 1} {name}: {elapsed:.2f} s, {check(name, done, args.tokens)}")

    times: dict[str, list[float]] = {name: [] for name in commands}
    for run in range(args.runs):
        order = list(commands) if run % 2 == 0 else list(reversed(commands))
        for name in order:
            times[name].append(execute(commands[name], env)[0])
    report(times, args)
    if args.profile:
        recipe_args = commands[RECIPE_NAME][1:] if RECIPE_NAME in commands else None
        profile(ask, recipe_args, env, args.top)


def report(times: dict[str, list[float]], args: argparse.Namespace) -> None:
    reference = statistics.median(times[RECIPE_NAME]) if RECIPE_NAME in times else None
    print(
        f"\none question, 1280x720 H.264 10 s clip, {FRAMES} frames, {args.tokens} new tokens, "
        f"CPU; process start to answer, median of {args.runs} paired runs\n"
    )
    print("| variant | median s | min s | vs (a) |\n|---|---:|---:|---:|")
    for name, values in times.items():
        median = statistics.median(values)
        ratio = f"{median / reference:.2f}x" if reference else "-"
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {ratio} |")
    print(
        f"\ncommand: python benchmarks/oneshot.py --runs {args.runs} --tokens {args.tokens} "
        f"--warmup {args.warmup}{' --profile' if args.profile else ''}"
    )


def imports(command: list[str], env: dict[str, str]) -> tuple[float, list[tuple[int, ...]]]:
    """Run `python -X importtime ...`: the wall time and (cumulative us, self us, depth, name)."""
    elapsed, done = execute([sys.executable, "-X", "importtime", *command], env)
    rows: list[tuple[int, int, int, str]] = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        if not cumulative.strip().isdigit():
            continue  # the header
        depth = (len(name) - len(name.lstrip()) - 1) // 2
        rows.append((int(cumulative), int(own), depth, name.strip()))
    return elapsed, rows


def profile(ask: list[str], recipe: list[str] | None, env: dict[str, str], top: int) -> None:
    """Where one `vidtt ask`'s imports go, from `python -X importtime -m vidtt ask ...`."""
    if recipe:
        elapsed, rows = imports(recipe, env)
        total = sum(r[0] for r in rows if r[2] == 0)
        print(
            f"\n(a) under -X importtime: {elapsed:.2f} s in all, {total / 1e6:.2f} s of it "
            f"importing {len(rows)} modules"
        )
    elapsed, rows = imports(["-m", "vidtt", *ask], env)
    total = sum(r[0] for r in rows if r[2] == 0)
    by_package: dict[str, int] = {}
    for _, own, _, name in rows:
        package = name.split(".")[0]
        by_package[package] = by_package.get(package, 0) + own
    print(
        f"(b) vidtt ask under -X importtime: {elapsed:.2f} s in all, {total / 1e6:.2f} s of it "
        f"importing {len(rows)} modules"
    )
    print(f"\nthe imports vidtt ask makes itself (depth 0), cumulative, top {top}")
    print("| module | cumulative s | self s |\n|---|---:|---:|")
    for cumulative, own, _, name in sorted(r for r in rows if r[2] == 0)[::-1][:top]:
        print(f"| {name} | {cumulative / 1e6:.3f} | {own / 1e6:.3f} |")
    # -X importtime lists a module after what it imports: its importer is the next row up a level
    roots = []
    for n, (cumulative, _, depth, name) in enumerate(rows):
        if "." not in name:
            by = next((r[3] for r in rows[n + 1 :] if r[2] < depth), "vidtt ask")
            roots.append((cumulative, name, by))
    print(f"\npackages by cumulative time of their first import, top {top}")
    print("| package | cumulative s | first imported by |\n|---|---:|---|")
    for cumulative, name, by in sorted(roots, reverse=True)[:top]:
        print(f"| {name} | {cumulative / 1e6:.3f} | {by} |")
    print(f"\nimport time by top-level package (each module's own time, summed), top {top}")
    print("| package | s | share |\n|---|---:|---:|")
    for package, own in sorted(by_package.items(), key=lambda kv: -kv[1])[:top]:
        print(f"| {package} | {own / 1e6:.3f} | {own / max(total, 1):.0%} |")


if __name__ == "__main__":
    main()
