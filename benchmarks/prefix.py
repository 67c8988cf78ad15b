"""The prefix cache: `vidtt run` with it on and off against a hand-written batched floor, chat
turn latency, and `vidtt serve` with and without it.

    python benchmarks/prefix.py [--videos 8] [--questions 6] [--tokens 16] [--runs 5]
        [--batch-size 8] [--workers 2] [--clients 32] [--skip-chat] [--skip-serve]

The workload of benchmarks/throughput.py (its model and videos, made by its `make_assets`; no
two videos show the same sampled frames): `--videos` videos with
`--questions` distinct questions each (20 to 40 tokens), 8 frames at max_side 384 (64 visual
tokens a frame), exactly `--tokens` new tokens (min = max), greedy.

1. Requests, model loaded once, variants taking turns run by run:
   (a) `vidtt run`'s job runner in this process, prefix cache on (as throughput.py's (d));
   (b) the same, prefix cache off (`prefix_cache: False`);
   (c) a hand-written batched floor: PyAV decodes each video's 8 frames once (vidtt's uniform
       indices, one pass, the same AREA scaling), the processor's chat template with one
       `<image>` per frame, left padding, `model.generate` per batch of `--batch-size`,
       every prompt prefilled whole.
   Each variant first answers one batch untimed (warm-up); the prefix cache is emptied
   before every run of (a). Every request's token ids are compared across (a), (b) and (c) in
   every run, and the floor's frames with the ones vidtt samples.
2. Chat: time to the first new token of `Pipeline.chat(..., stream=True)` (what `vidtt chat`
   calls): from the call to its return (the prompt built and checked) plus the Answer's own
   `timings.prefill` (generation start to the first token). The first *text piece* is not
   measured: the random-weight model often writes byte tokens that decode to no text until
   the answer ends. Turn 1 is the video's frames and a question, turn 2 turn 1, its answer and
   a new question; the frames are sampled before turn 1 as `vidtt chat` does (default frame cache),
   the prefix cache cleared before each run, cache on and off.
3. Serve: `vidtt serve` on 127.0.0.1 with and without `--no-prefix-cache`, warmed up on a
   video outside the workload, then every request sent by `--clients` concurrent clients.
4. Memory: this process's peak RSS, each server's VmHWM, and the bytes the caches hold.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

FRAMES = 8
MAX_SIDE = 384
QUESTIONS = [  # 21, 26, 20, 36, 29 and 38 tokens with the benchmark model's tokenizer
    "What is happening in this video, and what does the cat do there?",
    "Describe the two videos: where does the dog run and what flies over the lake?",
    "Is the cat on the mat doing the same thing as the cat in the other video?",
    "What happens in this video? Describe what sits on the mat, what looks around, and what "
    "plays with a ball.",
    "Which colours do you see in the park, on the mat and over the lake?",
    "Does one cat sleep while the other plays with a ball in the park by the lake, or do both run?",
]
A_NAME, B_NAME, C_NAME = "(a)", "(b)", "(c)"


@dataclass
class Result:
    """One run of one variant: its time and every request's new token ids."""

    seconds: float
    ids: dict[str, list[int]]
    cached: int = 0  # prompt tokens the prefix cache gave
    prompt: int = 0  # prompt tokens in all


@dataclass
class Served:
    """One server's pass over the workload."""

    seconds: float
    latencies: list[float]
    texts: list[str]
    cached: int | None  # None: the server's usage does not say
    prompt: int
    peak_mib: float
    prefix_bytes: float | None
    notes: list[str] = field(default_factory=list)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--questions", type=int, default=6, choices=range(1, 7))
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--skip-chat", action="store_true")
    return parser.parse_args()


def command_line(args: argparse.Namespace) -> str:
    flags = ["--skip-serve"] * args.skip_serve + ["--skip-chat"] * args.skip_chat
    return (
        f"python benchmarks/prefix.py --videos {args.videos} --questions {args.questions} "
        f"--tokens {args.tokens} --runs {args.runs} --batch-size {args.batch_size} "
        f"--workers {args.workers} --clients {args.clients}" + "".join(f" {f}" for f in flags)
    )


def workload(paths: list[Path], questions: int) -> list[dict[str, Any]]:
    return [
        {"id": f"{p.stem}-{q}", "videos": [str(p)], "question": QUESTIONS[q]}
        for p in paths
        for q in range(questions)
    ]


def trimmed(ids: list[int], eos: set[int], pad: int | None) -> list[int]:
    """New token ids as an Answer reports them: up to the first end token, else without the
    padding after it."""
    cut = next((i + 1 for i, t in enumerate(ids) if t in eos), None)
    if cut:
        return ids[:cut]
    while ids and ids[-1] == pad:
        ids = ids[:-1]
    return ids


# -- (a), (b): vidtt run's job runner ------------------------------------------------------
def job_answers(pipe: Any, requests: list[dict[str, Any]], batch: int, workers: int) -> Result:
    """`vidtt run`'s runner over `requests` as a JSONL file, timed; the answers read back."""
    from vidtt.jobs.local import plan_job, run_jobs

    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / "in.jsonl", Path(folder) / "out.jsonl"
        started = time.perf_counter()
        source.write_text("".join(json.dumps(r) + "\n" for r in requests))
        summary = run_jobs(
            pipe, plan_job(source, output), workers=workers, batch_size=batch, progress=False
        )
        seconds = time.perf_counter() - started
        records = [json.loads(line) for line in output.read_text().splitlines() if line]
    if summary.answered != len(requests):
        raise SystemExit(f"vidtt run answered {summary.answered} of {len(requests)}: {summary}")
    return Result(
        seconds,
        {r["id"]: r["token_ids"] for r in records},
        sum(r["usage"]["cached_tokens"] for r in records),
        sum(r["usage"]["prompt_tokens"] for r in records),
    )


# -- (c): the hand-written batched floor ---------------------------------------------------
def decode_frames(path: str) -> list[Any]:
    """The video's 8 frames at vidtt's uniform indices (segment centres), one decoding pass,
    scaled to max_side 384 with libswscale's AREA filter, as RGB arrays."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames
        wanted = sorted({min(int((k + 0.5) * total / FRAMES), total - 1) for k in range(FRAMES)})
        scale = min(1.0, MAX_SIDE / max(stream.width, stream.height))
        size = {"width": round(stream.width * scale), "height": round(stream.height * scale)}
        frames = []
        for number, frame in enumerate(container.decode(stream)):
            if number in wanted:
                frames.append(frame.to_ndarray(format="rgb24", interpolation="AREA", **size))
                if len(frames) == len(wanted):
                    break
    return frames


def floor_prompt(processor: Any, question: str) -> str:
    content = [{"type": "image"}] * FRAMES + [{"type": "text", "text": question}]
    messages = [{"role": "user", "content": content}]
    return str(processor.apply_chat_template(messages, add_generation_prompt=True))


def floor_answers(
    model: Any, processor: Any, requests: list[dict[str, Any]], batch: int, tokens: int
) -> Result:
    """Each video decoded once, then `generate` per batch of prompts, each prefilled whole."""
    eos = {model.generation_config.eos_token_id}
    pad = model.generation_config.pad_token_id
    processor.tokenizer.padding_side = "left"
    started = time.perf_counter()
    frames: dict[str, list[Any]] = {}
    for request in requests:
        video = request["videos"][0]
        if video not in frames:
            frames[video] = decode_frames(video)
    ids: dict[str, list[int]] = {}
    for first in range(0, len(requests), batch):
        group = requests[first : first + batch]
        inputs = processor(
            text=[floor_prompt(processor, r["question"]) for r in group],
            images=[frames[r["videos"][0]] for r in group],
            padding=True,
            return_tensors="pt",
        )
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        out = model.generate(
            **inputs, max_new_tokens=tokens, min_new_tokens=tokens, do_sample=False
        )
        for request, row in zip(group, out[:, inputs["input_ids"].shape[1] :].tolist()):
            ids[request["id"]] = trimmed(row, eos, pad)
    return Result(time.perf_counter() - started, ids)


def check_frames(pipe: Any, paths: list[Path]) -> str:
    """Whether the floor's frames equal the ones vidtt samples."""
    import numpy as np

    digests = set()
    for path in paths:
        clip = pipe.sample(str(path))
        digests.add(clip.digest())
        ours = np.stack(decode_frames(str(path)))
        if ours.shape != clip.array.shape or not np.array_equal(ours, clip.array):
            return f"DIFFER from vidtt's for {path.name} (indices {clip.indices})"
    distinct = f"{len(digests)} of the {len(paths)} videos show frames no other video shows"
    return f"identical to vidtt's (same indices, same pixels); {distinct}"


# -- 1: requests ---------------------------------------------------------------------------
def request_runs(
    pipes: tuple[Any, Any], requests: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, list[Result]]:
    """Every variant `--runs` times, taking turns; each vidtt run gets a fresh frame cache."""
    from vidtt.media.frame_cache import FrameCache

    on, off = pipes
    engine = on.engine
    variants: dict[str, Callable[[], Result]] = {
        A_NAME: lambda: job_answers(fresh(on), requests, args.batch_size, args.workers),
        B_NAME: lambda: job_answers(fresh(off), requests, args.batch_size, args.workers),
        C_NAME: lambda: floor_answers(
            engine.model, engine.processor, requests, args.batch_size, args.tokens
        ),
    }

    def fresh(pipe: Any) -> Any:
        import vidtt

        return vidtt.Pipeline(pipe.settings, engine=pipe.engine, cache=FrameCache())

    first = requests[: args.batch_size]  # an untimed warm-up of every variant on one batch
    job_answers(fresh(on), first, args.batch_size, args.workers)
    job_answers(fresh(off), first, args.batch_size, args.workers)
    floor_answers(engine.model, engine.processor, first, args.batch_size, args.tokens)
    results: dict[str, list[Result]] = {name: [] for name in variants}
    for _ in range(args.runs):
        for name, variant in variants.items():
            if name == A_NAME and engine.prefix_cache is not None:
                engine.prefix_cache.clear()  # every run of (a) starts cold, as a new job would
            results[name].append(variant())
    return results


def identical(results: dict[str, list[Result]]) -> str:
    """Which requests' token ids differ from (a)'s first run in any variant or run."""
    reference = results[A_NAME][0].ids
    differ = {
        (name, rid)
        for name, runs in results.items()
        for result in runs
        for rid, ids in result.ids.items()
        if reference.get(rid) != ids
    }
    runs = len(results[A_NAME])
    if not differ:
        return f"identical for all {len(reference)} requests in (a), (b) and (c), {runs} run(s)"
    named = ", ".join(sorted({f"{n} {r}" for n, r in differ})[:8])
    return f"DIFFER for {len({r for _, r in differ})} request(s): {named}"


# -- 2: chat -------------------------------------------------------------------------------
def first_piece(pipe: Any, messages: list[dict[str, Any]]) -> tuple[float, Any]:
    """Seconds from `Pipeline.chat(stream=True)` to its first new token, and the Answer."""
    started = time.perf_counter()
    stream = pipe.chat(messages, stream=True)
    ready = time.perf_counter() - started  # the prompt built: generation starts on reading
    for _ in stream:
        pass
    return ready + stream.answer.timings.prefill, stream.answer


def chat_turns(pipe: Any, video: Path) -> tuple[float, float, float, list[Any]]:
    """Turn 1 and turn 2 of a chat about `video` as `vidtt chat` sends them, then turn 2's
    question asked about the video alone (no history): first-token seconds of each, and
    the Answers."""
    clip = pipe.sample(str(video))  # vidtt chat samples before its prompt
    turn = {"role": "user", "content": [{"type": "video", "video": clip}, q(QUESTIONS[0])]}
    one, answer = first_piece(pipe, [turn])
    follow = [turn, {"role": "assistant", "content": answer.text}]
    two, second = first_piece(pipe, [*follow, {"role": "user", "content": [q(QUESTIONS[3])]}])
    alone = {"role": "user", "content": [{"type": "video", "video": clip}, q(QUESTIONS[3])]}
    three, third = first_piece(pipe, [alone])
    return one, two, three, [answer, second, third]


def q(text: str) -> dict[str, str]:
    return {"type": "text", "text": text}


def chat_runs(pipes: tuple[Any, Any], paths: list[Path], runs: int) -> dict[str, Any]:
    """Turn latencies with the prefix cache on and off (which goes first alternates run by
    run), each run on another video (the prefix cache cleared first), and whether both gave
    the same answers."""
    times: dict[str, list[tuple[float, float, float]]] = {"on": [], "off": []}
    reused: dict[str, list[tuple[int, int]]] = {"on": [], "off": []}
    same = True
    for run in range(runs):
        video = paths[run % len(paths)]
        answers: dict[str, Any] = {}
        order = list(zip(("on", "off"), pipes))
        for name, pipe in order if run % 2 == 0 else order[::-1]:
            if pipe.engine.prefix_cache is not None:
                pipe.engine.prefix_cache.clear()
            one, two, three, turns = chat_turns(pipe, video)
            times[name].append((one, two, three))
            usage = turns[1].usage
            reused[name].append((usage.cached_tokens, usage.prompt_tokens))
            answers[name] = [a.token_ids for a in turns]
        same = same and answers["on"] == answers["off"]
    return {"times": times, "reused": reused, "same": same}


# -- 3: serve ------------------------------------------------------------------------------
@contextmanager
def server(model: Path, folder: Path, tokens: int, cache: bool) -> Iterator[tuple[str, Any]]:
    """`vidtt serve` (the installed console script) on a free port of 127.0.0.1: its address
    and process; its last error lines are shown when it does not start."""
    import httpx
    from serve import free_port

    port = free_port()
    command = [
        str(Path(sys.executable).with_name("vidtt")), "serve", "--model", str(model),
        "--backend", "cpu", "--frames", str(FRAMES), "--max-side", str(MAX_SIDE),
        "--port", str(port), "--allowed-local-media-path", str(folder), "--max-queue", "256",
        "--no-access-log", *([] if cache else ["--no-prefix-cache"]),
    ]  # fmt: skip
    print("server:", shlex.join(command), flush=True)
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stderr=log, env=os.environ.copy())
        try:
            ends = time.monotonic() + 300
            while True:
                if process.poll() is not None or time.monotonic() > ends:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-5:]
                    raise SystemExit("vidtt serve did not start:\n" + "\n".join(tail))
                try:
                    if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            yield base, process
        finally:
            process.terminate()
            process.wait(60)


def bodies(requests: list[dict[str, Any]], tokens: int) -> list[dict[str, Any]]:
    """Chat completion bodies for `requests` (videos by name under the allowed folder)."""
    return [
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "video", "video": Path(r["videos"][0]).name},
                        {"type": "text", "text": r["question"]},
                    ],
                }
            ],
            "max_tokens": tokens,
            "min_tokens": tokens,
            "temperature": 0,
        }
        for r in requests
    ]


async def send_all(
    base: str, sent: list[dict[str, Any]], clients: int
) -> tuple[float, list[tuple[float, dict[str, Any]]]]:
    """Every body sent by `clients` concurrent clients: the wall time, and each response's
    latency and JSON in the order of `sent`."""
    import asyncio

    import httpx

    todo = list(enumerate(sent))
    got: list[Any] = [None] * len(sent)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as client:

        async def one_client() -> None:
            while todo:
                number, body = todo.pop(0)
                started = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=body)
                response.raise_for_status()
                got[number] = (time.perf_counter() - started, response.json())

        started = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        return time.perf_counter() - started, got


def serve_pass(
    model: Path, requests: list[dict[str, Any]], warm: list[dict[str, Any]], args: Any, cache: bool
) -> Served:
    """One server: warmed up on `warm`, then `requests` from `--clients` clients at once."""
    import asyncio

    folder = Path(requests[0]["videos"][0]).parent
    with server(model, folder, args.tokens, cache) as (base, process):
        asyncio.run(send_all(base, bodies(warm, args.tokens), args.clients))
        seconds, got = asyncio.run(send_all(base, bodies(requests, args.tokens), args.clients))
        peak = proc_kib(process.pid, "VmHWM") / 1024
        held = scraped(base, "vidtt_prefix_cache_bytes")
    usages = [body["usage"] for _, body in got]
    details = [u.get("prompt_tokens_details") or {} for u in usages]
    cached = None
    if all("cached_tokens" in d for d in details):
        cached = sum(int(d["cached_tokens"] or 0) for d in details)
    return Served(
        seconds=seconds,
        latencies=[latency for latency, _ in got],
        texts=[body["choices"][0]["message"]["content"] for _, body in got],
        cached=cached,
        prompt=sum(int(u["prompt_tokens"]) for u in usages),
        peak_mib=peak,
        prefix_bytes=held,
    )


def proc_kib(pid: int, name: str) -> float:
    """A `/proc/PID/status` memory line in KiB (0 where there is none)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def scraped(base: str, metric: str) -> float | None:
    """A metric's value from the server's /metrics (None where it has none)."""
    import httpx

    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        if line.startswith(metric + " ") or line.startswith(metric + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


# -- the report ----------------------------------------------------------------------------
def median(values: list[float]) -> float:
    return statistics.median(values)


def report_requests(
    results: dict[str, list[Result]], count: int, args: argparse.Namespace, frames: str
) -> None:
    names = {
        A_NAME: f"(a) `vidtt run` job runner, prefix cache on (batch {args.batch_size}, "
        f"{args.workers} workers)",
        B_NAME: "(b) the same, prefix cache off (`prefix_cache: False`)",
        C_NAME: f"(c) hand-written batched floor (PyAV once a video, transformers `generate`, "
        f"batch {args.batch_size}, every prompt prefilled)",
    }
    seconds = {name: median([r.seconds for r in runs]) for name, runs in results.items()}
    print(f"\n### Requests: {count} requests, median of {args.runs} run(s) taken in turns\n")
    print("| variant | seconds | requests/s | vs (c) | vs (b) |\n|---|---:|---:|---:|---:|")
    for name, label in names.items():
        s = seconds[name]
        print(
            f"| {label} | {s:.2f} | {count / s:.2f} | {seconds[C_NAME] / s:.2f}x "
            f"| {seconds[B_NAME] / s:.2f}x |"
        )
    a = results[A_NAME][0]
    print(
        f"\n(a)/(c) = **{seconds[C_NAME] / seconds[A_NAME]:.2f}x** (goal >= 1.6x); "
        f"(a)/(b) = **{seconds[B_NAME] / seconds[A_NAME]:.2f}x**. "
        f"(a) took {a.cached} of its {a.prompt} prompt tokens from the prefix cache in its first "
        f"run ((b): {results[B_NAME][0].cached}).\n"
        f"Token ids: {identical(results)}. The floor's frames: {frames}."
    )


def report_chat(chat: dict[str, Any], runs: int, model: str) -> None:
    print(
        "\n### Chat: time to the first new token of `Pipeline.chat(stream=True)`, median of "
        f"{runs} run(s), each on a video the prefix cache has not seen; {model}\n"
    )
    print(
        "| prefix cache | turn 1 ms | turn 2 ms | turn 2 / turn 1 | turn 2 cached / prompt "
        "tokens | turn 2's question alone ms | / turn 1 |\n|---|---:|---:|---:|---:|---:|---:|"
    )
    for name, rows in chat["times"].items():
        one, two, three = (median([r[k] for r in rows]) for k in range(3))
        goal = " (goal <= 0.25x)" if name == "on" else ""
        cached, prompt = chat["reused"][name][-1]
        print(
            f"| {name} | {one * 1000:.0f} | {two * 1000:.0f} | **{two / one:.2f}x**{goal} "
            f"| {cached} / {prompt} | {three * 1000:.0f} | {three / one:.2f}x |"
        )
    print(
        "\nTurn 2 recomputes turn 1's answer: this random-weight model writes byte tokens "
        "that decode to U+FFFD, so the answer's text, sent back, encodes to other (more) tokens "
        "than were kept; a trained model's answer encodes to its own tokens. The last columns "
        "ask turn 2's question about the video alone (what a follow-up costs once the history "
        "is found whole)."
    )
    said = "the same" if chat["same"] else "DIFFERENT"
    print(f"\nBoth turns' answers (token ids) with the cache on and off: {said}.")


def report_serve(served: dict[str, Served], count: int, clients: int) -> None:
    print(f"\n### `vidtt serve`: {count} requests from {clients} concurrent clients\n")
    cached = all(s.cached is not None for s in served.values())
    head = "| server | requests/s | median latency s | peak RSS (VmHWM) MiB | prefix cache MiB |"
    print(head + (" cached / prompt tokens |" if cached else ""))
    print("|---|---:|---:|---:|---:|" + ("---:|" if cached else ""))
    for name, s in served.items():
        held = f"{s.prefix_bytes / 2**20:.1f}" if s.prefix_bytes is not None else "-"
        row = (
            f"| {name} | {count / s.seconds:.2f} | {median(s.latencies):.2f} | {s.peak_mib:.0f} "
            f"| {held} |"
        )
        print(row + (f" {s.cached} / {s.prompt} |" if cached else ""))
    on, off = served["prefix cache on"], served["--no-prefix-cache"]
    same = sum(a == b for a, b in zip(on.texts, off.texts))
    print(
        f"\non/off: **{off.seconds / on.seconds:.2f}x** requests/s, median latency "
        f"{median(on.latencies) / median(off.latencies):.2f}x; answers equal on and off for "
        f"{same} of {count}" + ("" if cached else "; the servers' usage gives no cached tokens")
    )


def report_memory(stats: Any) -> None:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n### Memory\n\nThis process's peak RSS (every in-process variant, one model): "
        f"{peak:.0f} MiB. After (a)'s last run: {stats.describe()}."
    )


def header(args: argparse.Namespace, requests: list[dict[str, Any]], processor: Any) -> None:
    import platform

    import torch
    import transformers

    lengths = [len(processor.tokenizer(q)["input_ids"]) for q in QUESTIONS[: args.questions]]
    print(
        f"## Prefix cache: {len(requests)} requests ({args.videos} videos x {args.questions} "
        f"questions of {min(lengths)}-{max(lengths)} tokens), {FRAMES} frames at max_side "
        f"{MAX_SIDE} (64 visual tokens a frame), exactly {args.tokens} new tokens, greedy\n\n"
        f"{platform.node()}: {os.cpu_count()} CPU(s), torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}\ncommand: {command_line(args)}",
        flush=True,
    )


def pipelines(model: Path, tokens: int) -> tuple[Any, Any]:
    """Two pipelines on one loaded model: the prefix cache on (its default bound) and off."""
    import vidtt
    from vidtt.engine.core import Engine

    settings: dict[str, Any] = dict(
        model=str(model),
        backend="cpu",
        sampler_options={"num_frames": FRAMES, "max_side": MAX_SIDE},
        generation={"max_new_tokens": tokens, "min_new_tokens": tokens},
    )
    on = vidtt.Pipeline(**settings)
    e = on.engine
    bare = Engine(e.model, unkept(e.processor), name=e.name, backend=e.backend, dtype=e.dtype)
    return on, vidtt.Pipeline(**settings, prefix_cache=False, engine=bare)


def unkept(processor: Any) -> Any:
    """A copy of `processor` without the processed frames the prefix cache keeps beside it
    (what a pipeline loaded with `prefix_cache: False` has)."""
    import copy

    from vidtt.engine.processed import KEPT, Processed

    bare = copy.copy(processor)
    for name in KEPT:
        inner = getattr(bare, name, None)
        if isinstance(inner, Processed):
            setattr(bare, name, inner._inner)
    return bare


LARGER = (
    "a larger text model (hidden 512, 8 layers, the same vision tower), where prefill weighs "
    "more against each request's fixed costs (template, tokenizer, generate's set-up)"
)


def larger_model() -> Path:
    """The workload model's shape with a larger text model (built once into data/)."""
    from throughput import DATA

    from vidtt.testing.models import make_tiny_llava

    folder = DATA / "prefix-llava-larger"
    if not (folder / "config.json").exists():
        make_tiny_llava(folder, context=2048, image_size=384, patch_size=48, hidden=512, layers=8)
    return folder


def main() -> None:
    args = parse_args()
    import torch
    from throughput import make_assets

    paths, model = make_assets(args.videos + 1)  # the last video warms the servers up
    warm, paths = paths[-1], paths[: args.videos]
    requests = workload(paths, args.questions)
    on, off = pipelines(model, args.tokens)
    header(args, requests, on.processor)
    with torch.inference_mode():
        frames = check_frames(on, paths)
        results = request_runs((on, off), requests, args)
        stats = on.engine.prefix_stats()
        chat = None if args.skip_chat else chat_runs((on, off), paths, args.runs)
        larger = (
            None
            if args.skip_chat
            else chat_runs(pipelines(larger_model(), args.tokens), paths, args.runs)
        )
    served: dict[str, Served] = {}
    if not args.skip_serve:
        warm_up = workload([warm], args.questions)
        served["prefix cache on"] = serve_pass(model, requests, warm_up, args, True)
        served["--no-prefix-cache"] = serve_pass(model, requests, warm_up, args, False)
    report_requests(results, len(requests), args, frames)
    if chat is not None and larger is not None:
        report_chat(chat, args.runs, "the workload's model (text: hidden 128, 4 layers)")
        report_chat(larger, args.runs, LARGER)
    if served:
        report_serve(served, len(requests), args.clients)
    report_memory(stats)
    print(f"\ncommand: {command_line(args)}")


if __name__ == "__main__":
    main()
