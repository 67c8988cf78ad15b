"""`interval`: one frame every `every` seconds (or `fps` frames per second).

The frame taken for time t is the one on screen at t. Past `max_frames` the frames are thinned
evenly; below `min_frames` the sampler falls back to `min_frames` uniform frames.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from pydantic import Field, model_validator

from vidtt.plugin_api import (
    FrameOptions,
    OptionsError,
    PyAVSampler,
    StreamIndex,
    evenly,
    hookimpl,
)

from .uniform import uniform_indices


class IntervalOptions(FrameOptions):
    every: float | None = Field(None, gt=0, allow_inf_nan=False, description="seconds apart")
    fps: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="frames per second (1 / every)"
    )
    max_frames: int | None = Field(None, ge=1)
    min_frames: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one_rate(self) -> IntervalOptions:
        if self.every is not None and self.fps is not None:
            raise ValueError("give every or fps, not both")
        if self.min_frames and self.max_frames and self.min_frames > self.max_frames:
            raise ValueError("min_frames must not exceed max_frames")
        return self

    @property
    def step(self) -> float:
        if self.every is not None:
            return self.every
        return 1.0 / self.fps if self.fps is not None else 1.0


class IntervalSampler(PyAVSampler):
    name = "interval"
    description = "one frame every `every` seconds or at `fps`, within min/max_frames"
    options_model = IntervalOptions
    replaces_duplicates = False  # the clock fixes its frames: duplicates are only dropped

    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        begin = index.time_of(span[0])
        end = index.time_of(span[-1]) + index.frame_duration()
        step = options.step
        picks = on_screen(index, span, begin, end, step)
        if step > end - begin and not options.min_frames:
            raise OptionsError(
                f"an interval of {step:g} s is longer than {label} ({end - begin:.3f} s "
                "sampled): use a smaller every/fps, or set min_frames"
            )
        if options.min_frames and len(picks) < options.min_frames:
            count = min(options.min_frames, len(span))
            warnings.append(
                f"the interval gave {len(picks)} frame(s); took {count} uniform "
                f"frames to reach min_frames={options.min_frames}"
            )
            return sorted({span[i] for i in uniform_indices(len(span), count)})
        if options.max_frames and len(picks) > options.max_frames:
            picks = evenly(picks, options.max_frames)
        return picks


def on_screen(index: StreamIndex, span: range, begin: float, end: float, step: float) -> list[int]:
    """The frames on screen at begin, begin + step, ... before `end`: a frame is taken when a
    grid time falls inside its display interval. Work is bounded by the frames in `span`,
    however small the step."""
    if step > end - begin:
        return [span[0]]
    count = (end - begin) / step
    if count <= len(span):  # few grid times: look each one up
        times = (begin + k * step for k in range(int(count + 1e-9) + 1))
        return sorted({min(max(index.index_at(t), span[0]), span[-1]) for t in times if t < end})
    starts = [index.time_of(i) for i in span] + [end]
    shown_for = [(i, a, b) for i, (a, b) in zip(span, itertools.pairwise(starts)) if b > a]
    if step <= min(b - a for _, a, b in shown_for):  # a grid time inside every frame
        return [i for i, _, _ in shown_for]
    picks = []
    for i, shown, gone in shown_for:
        first_grid = begin + math.ceil((shown - begin) / step - 1e-9) * step
        if first_grid < gone:
            picks.append(i)
    return picks


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(IntervalSampler())
