"""A third-party sampler: the first `count` frames of a video, built on vidtt's PyAV sampler."""

from __future__ import annotations

from pydantic import Field

import vidtt
from vidtt.plugin_api import PyAVSampler


class FirstOptions(vidtt.SamplerOptions):
    count: int = Field(4, ge=1)


class FirstFrames(PyAVSampler):
    name = "first"
    description = "the first `count` frames"
    options_model = FirstOptions
    count_option = "count"  # what `vidtt ... --frames N` sets

    def choose(self, index, span, options, label, warnings):
        return list(span)[: options.count]


@vidtt.hookimpl
def register_samplers(register):
    register(FirstFrames())
