"""`uniform`: `num_frames` frames spread evenly over the video (or its `start`-`end` range).

Index rules over the N frames of the range, for k = 0 .. n-1:
- `centers` (default): the centre of each of n equal segments, floor((k + 0.5) * N / n).
- `linspace`: round(k * (N - 1) / (n - 1)), first and last frame included (as Qwen2-VL does).
- `arange`: floor(k * N / n), segment starts (as transformers' `load_video` does).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field

from vidtt.plugin_api import FrameOptions, OptionsError, PyAVSampler, StreamIndex, hookimpl

Rule = Literal["centers", "linspace", "arange"]


class UniformOptions(FrameOptions):
    num_frames: int = Field(8, ge=1, le=10_000)
    rule: Rule = "centers"


def uniform_indices(total: int, count: int, rule: Rule = "centers") -> list[int]:
    """`count` indices in `range(total)` by `rule` (see the module docstring)."""
    if rule == "linspace":
        if count == 1:
            return [0]
        return [round(k * (total - 1) / (count - 1)) for k in range(count)]
    offset = 0.5 if rule == "centers" else 0.0
    return [min(math.floor((k + offset) * total / count), total - 1) for k in range(count)]


class UniformSampler(PyAVSampler):
    name = "uniform"
    description = "num_frames frames evenly spread over the video (exact frames)"
    options_model = UniformOptions

    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        if options.num_frames > len(span) and "num_frames" not in options.model_fields_set:
            warnings.append(
                f"{label} has {len(span)} frame(s) to sample, fewer than the default "
                f"num_frames={options.num_frames}; took them all"
            )
            return list(span)
        if options.num_frames > len(span):
            where = " in the chosen range" if options.start or options.end else ""
            raise OptionsError(
                f"asked for {options.num_frames} frames but {label} has only {len(span)}"
                f"{where}: ask for num_frames <= {len(span)}"
            )
        picks = uniform_indices(len(span), options.num_frames, options.rule)
        return sorted({span[i] for i in picks})


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(UniformSampler())
