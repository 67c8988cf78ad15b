"""Long videos: the segments strategy on a 1-hour 720p video, against a plain `Pipeline.ask`
loop over the same segments, and a run resumed after an interruption at 50%.

    python benchmarks/long.py [--minutes 60] [--fps 1] [--tokens 16] [--runs 1]

The video (made once in benchmarks/data/): 1280x720 H.264, `--minutes` long at `--fps` frames a
second (1 by default, so an hour encodes in seconds): low-complexity colour shots, a new colour
every 75 s, with a square that moves every frame. It is a real hour to seek through and index,
with fewer frames a second than a camera's (the strategy reads 4 frames a segment, so the
frame rate changes only the index and the seeks). The model: the llava-interleave shape with
random weights that benchmarks/throughput.py uses (SigLIP tower on 384 px images in 48 px
patches: 64 tokens a frame; Qwen2 text model, 2048-token context). Frames at max_side 384.

Every variant does the same work: 48 segments of 75 s (the default rule: max(30 s, duration /
48)), 4 frames each, each note exactly `--tokens` new tokens (min = max), then one text-only
answer from the timeline:

  (a) `pipe.ask(video, q, strategy="segments")`: batches of 8 segments, one sampler pass a batch;
  (b) a plain loop: `Pipeline.batch` with one request a segment (its start, end, 4 frames and
      the same prompt), then the same final prompt: what a user would write by hand;
  (c) (a) interrupted (KeyboardInterrupt) after half the batches, notes kept in the store, then
      rerun: the rerun's time.

Peak memory: the process's resident set, sampled every 20 ms, above what it was before the
variant (the model and the torch runtime are loaded before).
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).parent / "data"
QUESTION = "What happens in the video, and when?"


def make_video(minutes: float, fps: float) -> Path:
    import av
    import numpy as np

    path = DATA / f"long-{minutes:g}min-{fps:g}fps-720p.mp4"
    if path.exists():
        return path
    DATA.mkdir(exist_ok=True)
    frames = round(minutes * 60 * fps)
    rng = np.random.default_rng(0)
    colours = rng.integers(30, 225, (frames // max(1, round(75 * fps)) + 2, 3), dtype=np.uint8)
    partial = path.with_suffix(".part.mp4")
    with av.open(str(partial), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.options = {"preset": "ultrafast", "g": str(round(10 * fps))}
        picture = np.zeros((720, 1280, 3), np.uint8)
        for n in range(frames):
            picture[:] = colours[n // max(1, round(75 * fps))]
            x = (n * 37) % (1280 - 120)
            picture[300:420, x : x + 120] = 255
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    partial.rename(path)
    return path


def make_model() -> Path:
    from vidtt.testing.models import make_tiny_llava

    model = DATA / "throughput-llava"
    if not (model / "config.json").exists():
        make_tiny_llava(model, context=2048, image_size=384, patch_size=48, hidden=128, layers=4)
    return model


class PeakMemory:
    """The resident set's peak above its level at the start, sampled in a thread."""

    def __enter__(self) -> PeakMemory:
        import psutil

        self.process = psutil.Process()
        self.base = self.peak = self.process.memory_info().rss
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _watch(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *_: Any) -> None:
        self.done.set()
        self.thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def above(self) -> float:
        return (self.peak - self.base) / 2**20


def segments_run(pipe: Any, video: Path) -> Any:
    from vidtt.pipeline.notes import MemoryStore

    pipe.note_store = MemoryStore()
    return pipe.ask(str(video), QUESTION, strategy="segments")


def plain_loop(pipe: Any, video: Path) -> None:
    """The same segments, frames and prompts, one `Pipeline.batch` request a segment."""
    from vidtt.pipeline import cutting, segments
    from vidtt.pipeline.notes import Timeline, note_prompt
    from vidtt.types import SegmentNote, SegmentOptions

    start, end = 0.0, float(pipe.registry.sampler("uniform").probe(_source(video)).duration)
    made = []
    for a, b in cutting.windows(start, end, SegmentOptions(shots=False)):
        prompt = note_prompt(a, b, [])
        request = {"videos": [str(video)], "question": prompt, "start": a, "end": b}
        request["num_frames"] = SegmentOptions().segment_frames
        (answer,) = pipe.batch([request], batch_size=1)
        made.append(SegmentNote(start=a, end=b, note=answer.text))
    line = Timeline(made, start, end, "windows")
    text = segments.timeline_text(line, []) + segments.ask_text(QUESTION)
    pipe.batch([{"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}])


def _source(video: Path) -> Any:
    from vidtt.types import VideoSource

    return VideoSource.of(str(video))


def resumed_run(pipe: Any, video: Path) -> float:
    """Interrupted after half the note batches (3 of 6), then rerun: the rerun's seconds."""
    from vidtt.pipeline.notes import MemoryStore

    pipe.note_store = MemoryStore()
    real, calls = pipe.answer, []

    def stopping(prepared: list[Any], stops: Any = None) -> Any:
        calls.append(1)
        if len(calls) > 3:  # 48 segments in batches of 8: 6 batches; stop after 3
            raise KeyboardInterrupt
        return real(prepared, stops)

    pipe.answer = stopping
    try:
        pipe.ask(str(video), QUESTION, strategy="segments")
    except KeyboardInterrupt:
        pass
    finally:
        pipe.answer = real
    kept = len(pipe.note_store.values)
    started = time.perf_counter()
    answer = pipe.ask(str(video), QUESTION, strategy="segments")
    seconds = time.perf_counter() - started
    reused = sum(n.cached for n in answer.segments)
    assert reused == kept == min(24, len(answer.segments)), (reused, kept)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--fps", type=float, default=1)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()

    import torch

    import vidtt
    from vidtt.media.frame_cache import FrameCache
    from vidtt.pipeline import cutting
    from vidtt.types import SegmentOptions

    started = time.perf_counter()
    video = make_video(args.minutes, args.fps)
    made = time.perf_counter() - started
    pipe = vidtt.Pipeline(
        model=str(make_model()),
        backend="cpu",
        sampler_options={"max_side": 384},
        segment_options={"shots": False},  # fixed windows, as the plain loop (b) cuts
        generation={"max_new_tokens": args.tokens, "min_new_tokens": args.tokens},
        cache=FrameCache(0),
    )
    count = len(cutting.windows(0, args.minutes * 60, SegmentOptions()))
    rows: dict[str, list[tuple[float, float]]] = {"a": [], "b": [], "c": []}
    with torch.inference_mode():
        for _ in range(args.runs):
            for key, work in (("a", segments_run), ("b", plain_loop)):
                with PeakMemory() as memory:
                    began = time.perf_counter()
                    done = work(pipe, video)
                    rows[key].append((time.perf_counter() - began, memory.above))
                if key == "a":
                    assert len(done.segments) == count, len(done.segments)
            with PeakMemory() as memory:
                rows["c"].append((resumed_run(pipe, video), memory.above))
    assert rows["a"]
    hours = args.minutes / 60
    print(
        f"\n{args.minutes:g}-minute 1280x720 video at {args.fps:g} fps (made in {made:.0f} s), "
        f"{count} segments x 4 frames at max_side 384, {args.tokens} new tokens a note, "
        f"median of {args.runs} run(s)\n"
    )
    print("| variant | seconds | hours of video per hour | peak memory above start |")
    print("|---|---:|---:|---:|")
    names = {
        "a": "(a) strategy segments (batches of 8)",
        "b": "(b) a plain loop: one request a segment",
        "c": "(c) (a) resumed after an interruption at 50%",
    }
    for key, name in names.items():
        seconds = statistics.median(s for s, _ in rows[key])
        peak = max(m for _, m in rows[key])
        print(f"| {name} | {seconds:.1f} | {hours * 3600 / seconds:.0f} | {peak:.0f} MiB |")
    print(
        f"\ncommand: python benchmarks/long.py --minutes {args.minutes:g} --fps {args.fps:g} "
        f"--tokens {args.tokens} --runs {args.runs}"
    )


if __name__ == "__main__":
    main()
