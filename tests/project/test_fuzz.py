"""Fuzzing: mutated small videos fed to every sampler end in a Clip or a VidttError, in time.

CI runs a short, fixed budget; a longer run: VIDTT_FUZZ_EXAMPLES=5000 python -m pytest
tests/project/test_fuzz.py -q
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import vidtt

EXAMPLES = int(os.environ.get("VIDTT_FUZZ_EXAMPLES", "60"))
PER_CALL_SECONDS = 10.0
SAMPLERS = [
    ("uniform", {"num_frames": 3}),
    ("interval", {"every": 0.5}),
    ("keyframe", {"max_frames": 3}),
]


@pytest.fixture(scope="module")
def seeds(videos) -> list[bytes]:
    return [videos[name].read_bytes() for name in ("h264", "vp9", "mpeg4")]


mutations = st.lists(
    st.tuples(
        st.floats(0, 1, exclude_max=True),
        st.sampled_from(["flip", "zero", "cut", "dup"]),
        st.integers(1, 64),
    ),
    min_size=1,
    max_size=6,
)


def mutate(data: bytes, steps: list[tuple[float, str, int]]) -> bytes:
    buffer = bytearray(data)
    for where, how, size in steps:
        at = int(where * len(buffer)) if buffer else 0
        if how == "flip":
            for i in range(at, min(at + size, len(buffer))):
                buffer[i] ^= 0xA5
        elif how == "zero":
            buffer[at : at + size] = bytes(min(size, len(buffer) - at))
        elif how == "cut":
            del buffer[at : at + size * 64]
        else:
            buffer[at:at] = buffer[at : at + size * 16]
    return bytes(buffer)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(which=st.integers(0, 2), steps=mutations)
def test_mutated_videos(seeds, which, steps) -> None:
    data = mutate(seeds[which], steps)
    with vidtt.limits.use(decode_seconds=PER_CALL_SECONDS):
        for name, options in SAMPLERS:
            started = time.monotonic()
            try:
                clip = vidtt.sample(data, name, **options)
            except vidtt.VidttError:
                pass
            else:
                assert len(clip.frames) == len(clip.indices) > 0
            assert time.monotonic() - started < PER_CALL_SECONDS + 2
