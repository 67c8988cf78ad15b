"""Synthetic videos with known shot boundaries: for the scene sampler's tests and benchmark.

Each shot is its own picture (a colour gradient with shapes and texture, from a seed) that
moves a little every frame, or pans fast (`motion`), or not at all (`static`). A `pan` shot
slides steadily one way across a textured scene many frames wide (its colours drifting as it
goes) while an object crosses it (`pans`: such shots, meeting in cuts and dissolves). Shots
meet in a hard cut, a fade through black or a dissolve; `flashes` adds bright frames inside
shots, which are not cuts. The truth is the frame where each new shot starts: a hard cut's
first frame, a gradual transition's middle.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

SETS = ("cuts", "fades", "dissolves", "flashes", "static", "motion", "pans")


@dataclass
class SceneVideo:
    path: Path
    cuts: list[int]  # frame numbers where shots start (the first shot's 0 left out)
    frames: int
    fps: float
    flashes: list[int] = field(default_factory=list)  # frames of flashes (not cuts)


@dataclass
class ShotPlan:
    length: int  # frames
    speed: float = 1.0  # pixels a frame the picture pans
    seed: int = 0
    into: str = "cut"  # how the next shot follows: cut, fade or dissolve
    blend: int = 0  # frames of that transition
    flashes: list[int] = field(default_factory=list)  # frames inside the shot
    pan: float = 0.0  # share of the frame's width a steady one-way pan moves each frame


def shot_picture(seed: int, width: int, height: int) -> Any:
    """One shot's picture, twice as wide as the frame (for panning): float32 RGB."""
    import numpy as np

    rng = np.random.default_rng(seed)
    wide = width * 2
    x = np.linspace(0, 1, wide, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    a, b, c = (rng.uniform(20, 235, 3).astype(np.float32) for _ in range(3))
    picture = a * (1 - x) * (1 - y) + b * x + c * y * (1 - x)
    for _ in range(8):
        x0, y0 = int(rng.integers(0, wide - 20)), int(rng.integers(0, height - 20))
        w, h = int(rng.integers(10, wide // 6)), int(rng.integers(10, height // 3))
        picture[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    texture = rng.normal(0, 12, (height // 4 + 1, wide // 4 + 1, 1)).astype(np.float32)
    picture += np.repeat(np.repeat(texture, 4, axis=0), 4, axis=1)[:height, :wide]
    return np.clip(picture, 0, 255)


def panorama(seed: int, width: int, height: int) -> Any:
    """A wide textured scene for a steady pan: colours that drift along it, shapes, grain;
    its details scale with `height` (the same scene at any frame size)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    stops = rng.uniform(20, 235, (max(3, width * 3 // (5 * height)), 3))
    at = np.linspace(0, 1, len(stops))
    x = np.linspace(0, 1, width)
    row = np.stack([np.interp(x, at, stops[:, c]) for c in range(3)], axis=-1)
    shade = np.linspace(0.6, 1.0, height, dtype=np.float32)[:, None, None]
    picture = (row[None] * shade).astype(np.float32)
    least, grain = max(8, height // 12), max(4, height // 24)
    for _ in range(width // max(1, height * 5 // 12)):
        margin = max(20, height * 5 // 24)
        x0, y0 = int(rng.integers(0, width - margin)), int(rng.integers(0, height - margin))
        w, h = int(rng.integers(least, height * 5 // 8)), int(rng.integers(least, height // 2))
        picture[y0 : y0 + h, x0 : x0 + w] = rng.uniform(0, 255, 3)
    texture = rng.normal(0, 12, (height // grain + 1, width // grain + 1, 1)).astype(np.float32)
    picture += np.repeat(np.repeat(texture, grain, axis=0), grain, axis=1)[:height, :width]
    return np.clip(picture, 0, 255)


def pan_view(picture: Any, shot: ShotPlan, t: int, size: tuple[int, int]) -> Any:
    """Frame `t` of a steady pan across `picture` (sub-pixel steps blended, as a camera's),
    with an object crossing it on its own path."""
    import numpy as np

    width, height = size
    at = shot.pan * width * t
    whole, part = int(at), at - int(at)
    frame = picture[:, whole : whole + width] * (1 - part)
    frame = frame + picture[:, whole + 1 : whole + 1 + width] * part
    side = max(8, height // 5)
    step = max(1, round(3 * width / 160))
    travel = (step * t) % (2 * (width - side))  # back and forth across the frame, never jumping
    x = width - side - (travel if travel < width - side else 2 * (width - side) - travel)
    y = int((height - side) * (0.5 + 0.35 * np.sin(t / 9)))
    frame[y : y + side, x : x + side] = (230, 60, 40)
    return frame


def plan_set(name: str, seconds: float, fps: float, seed: int = 0) -> list[ShotPlan]:
    """The shots of set `name` (see `SETS`), about `seconds` long."""
    import numpy as np

    if name not in SETS:
        raise ValueError(f"unknown scene set {name!r}: use one of {', '.join(SETS)}")
    rng = np.random.default_rng(seed)
    shots: list[ShotPlan] = []
    total = int(seconds * fps)
    while sum(s.length for s in shots) < total:
        shot = ShotPlan(int(rng.uniform(1.5, 4.0) * fps), seed=seed * 1000 + len(shots))
        if name in ("fades", "dissolves"):
            shot.into, shot.blend = name[:-1], int(rng.uniform(0.4, 1.0) * fps)
        if name == "flashes":
            half = int(fps // 2)
            shot.flashes = [int(rng.integers(half, shot.length - half))]
        if name == "static":
            shot.speed = 0.0
            if len(shots) % 3 == 1:
                shot.length = int(8 * fps)
        if name == "motion":
            shot.speed = float(rng.uniform(4, 10)) * fps / 30
        if name == "pans":
            shot.length = int(rng.uniform(3.0, 6.0) * fps)
            shot.pan = float(rng.uniform(1 / 150, 1 / 30)) * 30 / fps  # 1 to 5 s a width
            if len(shots) % 2:
                shot.into, shot.blend = "dissolve", int(rng.uniform(0.4, 1.0) * fps)
        shots.append(shot)
    shots[-1].into, shots[-1].blend = "cut", 0
    return shots


def render(shots: list[ShotPlan], size: tuple[int, int]) -> Iterator[tuple[Any, str]]:
    """Every frame (uint8 RGB) with what it is: "cut" (a shot's first frame after a cut),
    "middle" (a gradual transition's middle), "flash" or ""."""
    import numpy as np

    width, height = size
    pictures = [
        panorama(s.seed, width + int(s.pan * width * (s.length + s.blend)) + 2, height)
        if s.pan
        else shot_picture(s.seed, width, height)
        for s in shots
    ]

    def view(n: int, t: int) -> Any:
        if shots[n].pan:
            return pan_view(pictures[n], shots[n], t, size)
        travel = int(shots[n].speed * t) % (2 * width)  # back and forth, never jumping
        offset = travel if travel < width else 2 * width - travel
        frame = pictures[n][:, offset : offset + width]
        if shots[n].speed == 0:
            return frame
        bar = (t * 5) % (width - 20)  # something moves in every shot that moves
        frame = frame.copy()
        frame[height // 3 : height // 3 + 20, bar : bar + 20] = 255
        return frame

    for n, shot in enumerate(shots):
        before = shots[n - 1] if n else None
        lead = before.blend if before and before.into != "cut" else 0
        tail = shot.blend // 2 if shot.into != "cut" else 0
        for t in range(lead, shot.length - tail):
            frame, mark = view(n, t), ("cut" if n and t == 0 else "")
            if t in shot.flashes:
                frame, mark = frame * 0.2 + 0.8 * 255, "flash"
            yield np.clip(frame, 0, 255).astype(np.uint8), mark
        if shot.into != "cut" and n + 1 < len(shots):
            yield from _transition(shot, view, n, size)


def _transition(shot: ShotPlan, view: Any, n: int, size: tuple[int, int]) -> Iterator[Any]:
    import numpy as np

    for k in range(shot.blend):
        alpha = (k + 0.5) / shot.blend
        a = view(n, shot.length - shot.blend // 2 + k)
        b = view(n + 1, k)
        if shot.into == "dissolve":
            frame = (1 - alpha) * a + alpha * b
        else:
            frame = a * max(0.0, 1 - 2 * alpha) if alpha < 0.5 else b * min(1.0, 2 * alpha - 1)
        yield np.clip(frame, 0, 255).astype(np.uint8), "middle" if k == shot.blend // 2 else ""


def make_scene_video(
    path: str | Path,
    name: str = "cuts",
    seconds: float = 10.0,
    fps: float = 30.0,
    size: tuple[int, int] = (320, 180),
    seed: int = 0,
    shots: list[ShotPlan] | None = None,
    keyframe_flags: bool = True,
    frame_times: list[float] | None = None,
) -> SceneVideo:
    """Write set `name` (or `shots`) as an H.264 video (x264's own keyframe choice, as a real
    encoder's); `frame_times` (seconds) makes it variable-frame-rate."""
    import av

    path = Path(path)
    plan = shots or plan_set(name, seconds, fps, seed)
    cuts, flashes, count = [], [], 0
    time_base = Fraction(1, 1000) if frame_times else None
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = {"preset": "veryfast", "crf": "23"}
        if time_base:
            stream.codec_context.time_base = stream.time_base = time_base
        for count, (rgb, mark) in enumerate(render(plan, size)):
            if mark in ("cut", "middle"):
                cuts.append(count)
            if mark == "flash":
                flashes.append(count)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if time_base and frame_times:
                frame.pts, frame.time_base = round(frame_times[count] / time_base), time_base
            _mux(container, stream.encode(frame), keyframe_flags)
        _mux(container, stream.encode(), keyframe_flags)
    return SceneVideo(path, cuts, count + 1, fps, flashes)


def _mux(container: Any, packets: list[Any], keyframe_flags: bool) -> None:
    for packet in packets:
        if not keyframe_flags:
            packet.is_keyframe = False
        container.mux(packet)


def scene_frames(name: str, seconds: float, fps: float, size: tuple[int, int], seed: int = 0):  # type: ignore[no-untyped-def]
    """The frames of set `name` as a list of arrays, and the cut frames."""
    frames, cuts = [], []
    for n, (rgb, mark) in enumerate(render(plan_set(name, seconds, fps, seed), size)):
        frames.append(rgb)
        if mark in ("cut", "middle"):
            cuts.append(n)
    return frames, cuts
