"""Each answer reports the peak memory its batch used, measured by the backend afresh per batch."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from vidtt.backends.cpu import CpuBackend

QUESTION = "What happens?"
MIB = 1 << 20

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")


@linux
def test_the_cpu_peak_starts_again_after_a_reset() -> None:
    cpu = CpuBackend()
    cpu.reset_peak_memory()
    before = cpu.peak_memory()
    block = np.ones(256 * MIB, dtype=np.uint8)  # touched: resident
    high = cpu.peak_memory()
    del block
    cpu.reset_peak_memory()
    after = cpu.peak_memory()
    assert before is not None and high is not None and after is not None
    assert high - before >= 200 * MIB
    assert after < high - 200 * MIB


@linux
def test_an_answer_reports_its_batch_peak(llava, videos) -> None:
    answer = llava.ask(videos["h264"], QUESTION, max_new_tokens=2)
    assert answer.peak_memory is not None
    assert answer.peak_memory >= sum(p.numel() * 4 for p in llava.engine.model.parameters())
    assert answer.model_dump()["peak_memory"] == answer.peak_memory


def test_a_backend_that_cannot_tell_reports_none(llava, videos, monkeypatch) -> None:
    monkeypatch.setattr(llava.engine, "memory", None)
    assert llava.ask(videos["h264"], QUESTION, max_new_tokens=2).peak_memory is None
