"""`keyframe`: only keyframes (I-frames) are decoded, thinned evenly to `max_frames`.

The fastest sampler, but lossy for motion: keyframes sit where the encoder put them (often every
2 to 10 seconds), not where the action is. When a video has fewer keyframes than asked, the Clip
holds them all and says so in its warnings (no padding).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from vidtt.plugin_api import (
    FrameOptions,
    PyAVSampler,
    SamplingContext,
    StreamIndex,
    evenly,
    gap_fill,
    hookimpl,
)


class KeyframeOptions(FrameOptions):
    max_frames: int = Field(8, ge=1, le=10_000)


class KeyframeSampler(PyAVSampler):
    name = "keyframe"
    description = "keyframes only (fastest; lossy for motion), thinned to max_frames"
    options_model = KeyframeOptions
    keyframes_only = True

    def choose(
        self, index: StreamIndex, span: range, options: Any, label: str, warnings: list[str]
    ) -> list[int]:
        keys = [k for k in index.keyframes if span[0] <= k <= span[-1]]
        if not keys:
            warnings.append("no keyframe lies in the range; took the range's first frame")
            return [span[0]]
        if len(keys) < options.max_frames:
            warnings.append(
                f"{label} has {len(keys)} keyframe(s) in range, fewer than the "
                f"{options.max_frames} asked; returned them all"
            )
        return evenly(keys, options.max_frames)

    def replacements(
        self, context: SamplingContext, kept: list[int], tried: set[int], count: int
    ) -> list[int]:
        """Other keyframes of the range, in the widest gaps."""
        span = context.span
        keys = [k for k in context.index.keyframes if span[0] <= k <= span[-1]]
        return gap_fill(keys, kept, tried, count)


@hookimpl
def register_samplers(register) -> None:  # type: ignore[no-untyped-def]
    register(KeyframeSampler())
