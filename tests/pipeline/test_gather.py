"""`Gather`: answers that threads ask for at once are generated together; and `vidtt run`
generates the segment notes of two long videos side by side in shared batches."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from vidtt.pipeline import gather
from vidtt.pipeline.gather import Gather
from vidtt.testing import make_video


class Asked:
    """A prepared request as `Gather` sees it: a batch key and a value to answer with."""

    def __init__(self, value: int, key: str = "k") -> None:
        self.value, self.key = value, key

    def batch_key(self) -> str:
        return self.key


class Generator:
    """Answers each request with its value, slowly, recording each call's values."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[int]] = []
        self.fail_on = fail_on

    def __call__(self, prepared: list[Any]) -> list[int]:
        self.calls.append([p.value for p in prepared])
        time.sleep(0.05)
        if self.fail_on in self.calls[-1]:
            raise RuntimeError("generation failed")
        return [p.value * 10 for p in prepared]


def in_threads(gather: Gather, batches: list[list[Asked]]) -> list[Any]:
    results: list[Any] = [None] * len(batches)

    def ask(n: int) -> None:
        try:
            results[n] = gather(batches[n])
        except Exception as exc:
            results[n] = exc

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_concurrent_callers_share_one_generate_and_get_their_own_answers() -> None:
    generator = Generator()
    results = in_threads(Gather(generator), [[Asked(1), Asked(2)], [Asked(3)], [Asked(4)]])
    assert results == [[10, 20], [30], [40]]
    assert len(generator.calls) == 1 and sorted(generator.calls[0]) == [1, 2, 3, 4]


def test_most_and_batch_keys_split_the_work() -> None:
    generator = Generator()
    batches = [[Asked(1), Asked(2)], [Asked(3), Asked(4)], [Asked(5, key="other")]]
    results = in_threads(Gather(generator, most=2), batches)
    assert results == [[10, 20], [30, 40], [50]]
    assert sorted(map(sorted, generator.calls)) == [[1, 2], [3, 4], [5]]


def test_a_failure_reaches_every_caller_of_its_batch_only() -> None:
    generator = Generator(fail_on=2)
    results = in_threads(Gather(generator), [[Asked(1)], [Asked(2)], [Asked(3, key="other")]])
    assert isinstance(results[0], RuntimeError) and isinstance(results[1], RuntimeError)
    assert results[2] == [30]


def test_one_caller_alone_is_answered_at_once() -> None:
    generator = Generator()
    started = time.perf_counter()
    assert Gather(generator)([Asked(7)]) == [70]
    assert time.perf_counter() - started < 1.0 and generator.calls == [[7]]


@pytest.fixture
def two_videos(tmp_path: Path) -> list[Path]:
    return [make_video(tmp_path / f"v{n}.mp4", frames=120, fps=10) for n in range(2)]


def test_run_batches_the_notes_of_two_videos_together(
    llava_dir: Path,
    two_videos: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cache_dir: Path,
) -> None:
    import vidtt
    from vidtt.jobs.local import plan_job, run_jobs

    monkeypatch.setattr(gather, "WAIT", 0.5)  # room for the other worker on a busy machine
    pipe = vidtt.Pipeline(model=str(llava_dir), backend="cpu", generation={"max_new_tokens": 4})
    sizes: list[int] = []
    real = pipe.answer

    def answer(prepared: list[Any], stops: Any = None) -> Any:
        sizes.append(len(prepared))
        return real(prepared, stops)

    monkeypatch.setattr(pipe, "answer", answer)
    options = {"min_segment": 2, "max_segments": 6, "shots": False, "note_tokens": 4,
               "batch_size": 6}  # fmt: skip
    lines = [
        {
            "id": n,
            "video": str(v),
            "question": "What?",
            "strategy": "segments",
            "segment_options": options,
        }
        for n, v in enumerate(two_videos)
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    summary = run_jobs(pipe, plan_job(source, out), progress=False, workers=2)
    assert summary.answered == 2
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(len(r["segments"]) == 6 for r in records)
    assert max(sizes) == 12  # both videos' 6 notes in one generate
