"""`vidtt watch` on a live 720p 30 fps stream, against a hand-written threaded OpenCV watcher.

    python benchmarks/live.py [--seconds 120] [--every 2] [--window 4] [--frames 8] [--tokens 16]

A feeder process (`vidtt.testing.streams.UdpStream`) sends 1280x720 H.264 at 30 fps as MPEG-TS
over UDP to 127.0.0.1 in real time, each frame carrying its number. Against that stream, for
`--seconds` each, one after the other:

  (a) vidtt: `Pipeline.watch` (the reader thread, the ring buffer, uniform `--frames` frames of
      the last `--window` seconds every `--every` seconds, ticks skipped while the model is busy);
  (b) the floor: what an expert writes by hand: an OpenCV `VideoCapture` read on its own
      thread into a deque of the window (4 frames a second kept), and every tick the same
      number of frames, scaled to 384 px, asked through the processor and `model.generate`.

Both ask the same mid-size random llava-interleave-shaped model (hidden 512, 8 layers, 384 px
images in 24 px patches: 256 tokens a frame), exactly `--tokens` tokens an answer, on the CPU.
Printed: answers, ticks skipped, latency from the window's last frame reaching the watcher to
the answer (median, p95) and from that frame leaving the feeder (read from its number), the
watcher's decoding CPU (vidtt: its reader thread, against the process's CPU), and the resident
memory after the first answer and at the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
FPS, SIZE, KEEP_FPS = 30, (1280, 720), 4
FEEDER = """
import sys, time
from vidtt.testing.streams import UdpStream
stream = UdpStream(port={port}, fps={fps}, size={size}).start()
print(time.monotonic(), flush=True)
sys.stdin.read()
stream.stop()
"""


def make_model() -> Path:
    from vidtt.testing.models import make_tiny_llava

    model = DATA / "live-llava"
    if not (model / "config.json").exists():
        make_tiny_llava(model, context=4096, image_size=384, patch_size=24, hidden=512, layers=8)
    return model


class Feeder:
    """The stream, from a process of its own (its encoding is not the watcher's CPU)."""

    def __init__(self, port: int) -> None:
        code = FEEDER.format(port=port, fps=FPS, size=SIZE)
        self.process = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.started = float(self.process.stdout.readline())  # CLOCK_MONOTONIC: system-wide

    def sent_at(self, number: int) -> float:
        return self.started + number / FPS

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


class Run:
    """What one watcher did: latencies, skipped ticks, memory."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.latency: list[float] = []
        self.from_source: list[float] = []
        self.skipped = 0
        self.memory: list[float] = []
        self.cpu_start = self._cpu()
        self.decode_cpu = 0.0
        self.ring: list[int] = []  # the ring buffer's bytes at each answer (vidtt)

    def _cpu(self) -> float:
        times = self.process.cpu_times()
        return float(times.user + times.system)

    def record(self, latency: float, source_latency: float, skipped: int) -> None:
        self.latency.append(latency)
        self.from_source.append(source_latency)
        self.skipped += skipped
        self.memory.append(self.process.memory_info().rss / 2**20)

    def report(self, name: str, seconds: float) -> None:
        def stats(values: list[float]) -> str:
            if len(values) < 2:
                return "n/a"
            p95 = statistics.quantiles(values, n=20)[-1]
            return f"median {statistics.median(values):.2f} s, p95 {p95:.2f} s"

        cpu = self._cpu() - self.cpu_start
        print(
            f"{name}: {len(self.latency)} answers in {seconds:.0f} s, {self.skipped} ticks skipped"
        )
        print(f"  latency, window's last frame received -> answer: {stats(self.latency)}")
        print(f"  latency, window's last frame sent -> answer:     {stats(self.from_source)}")
        if self.decode_cpu:
            print(
                f"  decoding: {self.decode_cpu:.1f} CPU s of {cpu:.1f} ({self.decode_cpu / cpu:.0%}"
                f" of the process; {self.decode_cpu / seconds:.0%} of one core)"
            )
        if self.memory:
            marks = [
                self.memory[round(q * (len(self.memory) - 1))] for q in (0, 0.25, 0.5, 0.75, 1)
            ]
            print("  memory (MiB) after the first answer, at 1/4, 1/2, 3/4 and the end: "
                  + ", ".join(f"{m:.0f}" for m in marks))  # fmt: skip
        if self.ring:
            print(f"  ring buffer: at most {max(self.ring) / 2**20:.0f} MiB "
                  f"(last {self.ring[-1] / 2**20:.0f} MiB)")  # fmt: skip


def vidtt_watch(pipe: Any, url: str, feeder: Feeder, args: argparse.Namespace) -> Run:
    from vidtt.testing.videos import read_frame_number

    run = Run()
    last: list[int] = []
    real = pipe.answer

    def answer(prepared: Any) -> Any:
        clip = prepared.conversation[0].content[0].video
        last.append(read_frame_number(clip.array[-1]))
        return real([prepared])[0]

    settings = {"every": args.every, "window": args.window, "duration": args.seconds}
    watch = pipe.watch(url, "What is happening?", buffer_fps=KEEP_FPS, num_frames=args.frames,
                       **settings)  # fmt: skip
    watch.generate = answer
    for event in watch:
        if event.kind == "answer":
            run.record(event.latency, time.monotonic() - feeder.sent_at(last[-1]), event.skipped)
            run.ring.append(watch.reader.ring.nbytes)
    run.decode_cpu = watch.reader.stats.cpu_seconds
    return run


def floor_watch(
    model: Any, processor: Any, url: str, feeder: Feeder, args: argparse.Namespace
) -> Run:
    """The hand-written watcher: a reader thread and a tick loop, as an expert writes them."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # no decoder chatter on stderr
    import cv2
    import torch
    from PIL import Image

    from vidtt.testing.videos import read_frame_number

    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    ring: collections.deque[tuple[float, Any]] = collections.deque()
    lock, stop = threading.Lock(), threading.Event()

    def read() -> None:
        keep_from = 0.0
        while not stop.is_set():
            ok, frame = capture.read()
            now = time.monotonic()
            if not ok or now < keep_from:
                continue
            keep_from = now + 1 / KEEP_FPS
            with lock:
                ring.append((now, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)))
                while ring[0][0] < now - args.window:
                    ring.popleft()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    run, started, tick = Run(), time.monotonic(), 1
    while (due := started + tick * args.every) < started + args.seconds:
        time.sleep(max(0.0, due - time.monotonic()))
        with lock:
            frames = list(ring)
        if not frames:
            tick += 1
            continue
        step = max(1, len(frames) // args.frames)
        chosen = frames[::step][-args.frames :]
        images = []
        for _, rgb in chosen:
            image = Image.fromarray(rgb)
            image.thumbnail((384, 384))
            images.append(image)
        prompt = (f"<|im_start|>user\n{'<image>' * len(images)}What is happening?<|im_end|>\n"
                  "<|im_start|>assistant\n")  # fmt: skip
        inputs = processor(text=prompt, images=images, return_tensors="pt")
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                           do_sample=False)  # fmt: skip
        now = time.monotonic()
        missed = int((now - started) // args.every) + 1
        skipped, tick = max(0, missed - tick - 1), max(missed, tick + 1)
        sent = feeder.sent_at(read_frame_number(chosen[-1][1]))
        run.record(now - frames[-1][0], now - sent, skipped)
    stop.set()
    reader.join(5)
    capture.release()
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--every", type=float, default=2)
    parser.add_argument("--window", type=float, default=4)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()

    import vidtt
    from vidtt import limits
    from vidtt.testing.streams import free_port

    limits.set_default(block_private_addresses=False)  # the stream is on 127.0.0.1
    pipe = vidtt.Pipeline(
        model=str(make_model()),
        backend="cpu",
        sampler_options={"max_side": 384},
        generation={"max_new_tokens": args.tokens, "min_new_tokens": args.tokens},
    )
    print(f"stream: {SIZE[0]}x{SIZE[1]} H.264 at {FPS} fps, MPEG-TS over UDP on 127.0.0.1; "
          f"every {args.every:g} s, window {args.window:g} s, {args.frames} frames, "
          f"{args.tokens} tokens an answer, {args.seconds:g} s each")  # fmt: skip
    runs = {}
    for name in ("vidtt watch", "hand-written floor"):
        port = free_port("udp")
        feeder = Feeder(port)
        try:
            began = time.monotonic()
            if name == "vidtt watch":
                run = vidtt_watch(pipe, f"udp://127.0.0.1:{port}", feeder, args)
            else:
                run = floor_watch(
                    pipe.model, pipe.processor, f"udp://127.0.0.1:{port}", feeder, args
                )
            run.report(name, time.monotonic() - began)
            runs[name] = run
        finally:
            feeder.close()
    ours, floor = runs["vidtt watch"], runs["hand-written floor"]
    for label, a, b in (
        ("received -> answer", ours.latency, floor.latency),
        ("sent -> answer", ours.from_source, floor.from_source),
    ):
        print(f"vidtt / floor, median latency {label}: "
              f"{statistics.median(a) / statistics.median(b):.2f}x")  # fmt: skip
    print("command: python benchmarks/live.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
