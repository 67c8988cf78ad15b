"""`interval`: one frame every `every` seconds (or `fps` frames per second).

The frame taken for time t is the one on screen at t. Past `max_frames` the frames are thinned
evenly; below `min_frames` the sampler falls back to `min_frames` uniform frames.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from vidtt import OptionsError, SamplerOptions, hookimpl

from .base import PyAVSampler, evenly
from .index import StreamIndex
from .uniform import uniform_indices


class IntervalOptions(SamplerOptions):
    every: float | None = Field(None, gt=0, description="seconds between frames")
    fps: float | None = Field(None, gt=0, description="frames per second (1 / every)")
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

    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        begin = index.seconds(index.pts[span[0]])
        end = index.seconds(index.pts[span[-1]]) + index.frame_duration()
        step = options.step
        times = [begin + k * step for k in range(int((end - begin) / step + 1e-9) + 1)]
        times = [t for t in times if t < end] or [begin]
        picks = sorted({min(max(index.index_at(t), span[0]), span[-1]) for t in times})
        if len(times) == 1 and step > end - begin and not options.min_frames:
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


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(IntervalSampler())
