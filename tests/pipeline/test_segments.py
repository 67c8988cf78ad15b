"""The segments strategy (docs/long.md): a long video answered from a timeline of notes."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from commands import console, in_process

import vidtt
from vidtt.config import load_config
from vidtt.errors import ConfigError, OptionsError
from vidtt.pipeline import cutting, notes
from vidtt.pipeline.notes import MemoryStore
from vidtt.testing import make_video
from vidtt.testing.scenes import ShotPlan, make_scene_video
from vidtt.types import SegmentNote, SegmentOptions, TextPart, VideoPart, render_timeline

pytestmark = pytest.mark.usefixtures("cache_dir")  # each test its own empty cache
SMALL = {"min_segment": 2, "max_segments": 6, "shots": False, "note_tokens": 6}


@pytest.fixture(scope="module")
def clip12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 seconds at 10 fps: frame n shows its number (`read_frame_number`)."""
    return make_video(tmp_path_factory.mktemp("long") / "twelve.mp4", frames=120, fps=10)


def pipeline(model: Path) -> Any:
    pipe = vidtt.Pipeline(
        model=str(model),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 6},
    )
    pipe.note_store = MemoryStore()
    return pipe


@pytest.fixture(scope="module")
def pipe(llava_dir: Path) -> Any:
    return pipeline(llava_dir)


class Recorder:
    """Wraps `pipe.answer`: the prepared requests it was given; raises KeyboardInterrupt on
    call `stop_at` (counted from 1), like a Ctrl-C mid-run."""

    def __init__(self, pipe: Any, monkeypatch: pytest.MonkeyPatch, stop_at: int = 0) -> None:
        self.real, self.calls, self.stop_at = pipe.answer, [], stop_at
        self.replies: dict[str, str] = {}
        monkeypatch.setattr(pipe, "answer", self)

    def __call__(self, prepared: list[Any], stops: Any = None) -> Any:
        self.calls.append(prepared)
        if self.stop_at and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        answers = self.real(prepared, stops)
        for p, a in zip(prepared, answers):
            text = prompt_text(p)
            for start, reply in self.replies.items():
                if text.startswith(start):
                    a.text = reply
        return answers

    def notes(self) -> list[Any]:
        return [p for batch in self.calls for p in batch if clips_of(p)]

    def finals(self) -> list[Any]:
        return [p for batch in self.calls for p in batch if not clips_of(p)]


def clips_of(prepared: Any) -> list[Any]:
    return [p.video for m in prepared.conversation for p in m.content if isinstance(p, VideoPart)]


def prompt_text(prepared: Any) -> str:
    return "\n".join(
        p.text for m in prepared.conversation for p in m.content if isinstance(p, TextPart)
    )


def test_the_segment_count_rule() -> None:
    rule = SegmentOptions()
    assert len(cutting.windows(0, 3600, rule)) == 48  # an hour: 48 segments of 75 s
    assert cutting.segment_length(3600, rule) == 75
    assert len(cutting.windows(0, 600, rule)) == 20  # ten minutes: 30 s each
    assert cutting.windows(0, 10, rule) == [(0, 10)]  # shorter than min_segment: one
    fixed = cutting.windows(0, 100, SegmentOptions(segment_seconds=25))
    assert fixed == [(0, 25), (25, 50), (50, 75), (75, 100)]
    capped = SegmentOptions(segment_seconds=1, max_segments=5)
    assert len(cutting.windows(0, 100, capped)) == 5  # never more than max_segments


def test_shots_become_segments() -> None:
    rule = SegmentOptions(min_segment=5, max_segments=10)
    shots = [(0, 2), (2, 20), (20, 21), (21, 60)]
    got = cutting.from_shots(shots, 0, 60, rule)
    assert got[0][0] == 0 and got[-1][1] == 60
    assert all(b - a >= 5 for a, b in got)  # short shots joined a neighbour
    assert all(a2 == b1 for (_, b1), (a2, _) in itertools.pairwise(got))  # no gaps
    starts = {a for a, _ in got}
    assert 21 in starts and 2 not in starts  # a cut kept; the 2 s shot joined its neighbour
    assert all(b - a <= 2 * 6 for a, b in got)  # the 18 s and 39 s shots split (6 s a segment)
    few = cutting.from_shots(
        [(k, k + 1) for k in range(60)], 0, 60, SegmentOptions(min_segment=1, max_segments=4)
    )
    assert len(few) <= 4


def test_fixed_windows_notes_frames_and_final_prompt(
    pipe: Any, clip12: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Recorder(pipe, monkeypatch)
    answer = pipe.ask(str(clip12), "What happens?", strategy="segments", segment_options=SMALL)
    assert answer.strategy == "segments"
    spans = [(n.start, n.end) for n in answer.segments]
    assert spans == [(2.0 * k, 2.0 * k + 2) for k in range(6)]
    notes = record.notes()
    assert len(notes) == 6
    for note, prepared in zip(answer.segments, notes):
        (clip,) = clips_of(prepared)
        assert len(clip) == 4
        assert all(note.start <= t < note.end for t in clip.timestamps)
        assert all(note.start * 10 <= i < note.end * 10 for i in clip.indices)
        assert note.frames == list(clip.timestamps)
        a, b = note.span().split("-")
        assert f"from {a} to {b}." in prompt_text(prepared)
    (final,) = record.finals()
    text = prompt_text(final)
    times = re.findall(r"^\[(\d+:\d\d)-(\d+:\d\d)\]", text, re.M)
    assert times == [tuple(n.span().split("-")) for n in answer.segments]
    assert "What happens?" in text and "cite the times" in text
    data = json.loads(answer.model_dump_json())
    assert data["segments"][0]["frames"] == answer.segments[0].frames


def test_a_when_question_asks_for_time_ranges(
    pipe: Any, clip12: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Recorder(pipe, monkeypatch)
    pipe.ask(str(clip12), "When does the light go out?", strategy="segments", segment_options=SMALL)
    assert "time range(s)" in prompt_text(record.finals()[0])


def test_resume_after_an_interruption_makes_only_the_missing_notes(
    llava_dir: Path, clip12: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = pipeline(llava_dir)
    options = {**SMALL, "batch_size": 1}
    Recorder(pipe, monkeypatch, stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        pipe.ask(str(clip12), "What happens?", strategy="segments", segment_options=options)
    assert len(pipe.note_store.values) == 2  # the two described before Ctrl-C are kept
    monkeypatch.undo()
    again = Recorder(pipe, monkeypatch)
    answer = pipe.ask(str(clip12), "What happens?", strategy="segments", segment_options=options)
    assert len(again.notes()) == 4 and len(answer.segments) == 6
    assert [n.cached for n in answer.segments] == [True, True] + [False] * 4
    monkeypatch.undo()
    second = Recorder(pipe, monkeypatch)
    other = pipe.ask(str(clip12), "Is it dark?", strategy="segments", segment_options=options)
    assert second.notes() == [] and all(n.cached for n in other.segments)  # all reused
    assert [n.note for n in other.segments] == [n.note for n in answer.segments]


def test_a_different_model_sampling_or_prompt_never_reuses_notes(
    llava_dir: Path, clip12: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = pipeline(llava_dir)
    request = {"videos": [str(clip12)], "segment_options": SMALL}
    first = notes.timeline(pipe, request)
    assert first.made == 6 and len(pipe.note_store.values) == 6
    assert notes.timeline(pipe, request).made == 0
    more_frames = {**request, "segment_options": {**SMALL, "segment_frames": 2}}
    assert notes.timeline(pipe, more_frames).made == 6
    smaller = {**request, "size": 64}
    assert notes.timeline(pipe, smaller).made == 6
    longer = {**request, "segment_options": {**SMALL, "note_tokens": 7}}
    assert notes.timeline(pipe, longer).made == 6
    copy = tmp_path / "another-model"
    shutil.copytree(llava_dir, copy)
    other = pipeline(copy)
    other.note_store = pipe.note_store
    made = notes.timeline(other, request)
    assert made.made == 6 and not set(made.keys) & set(first.keys)
    monkeypatch.setattr(notes, "NOTE_PROMPT", "Say what you see from {start} to {end}.")
    assert notes.timeline(pipe, request).made == 6
    assert len(set(pipe.note_store.values)) == 36


def test_notes_go_to_the_on_disk_store(llava_dir: Path, clip12: Path, cache_dir: Path) -> None:
    pytest.importorskip("vidtt.media.store")
    pipe = pipeline(llava_dir)
    pipe.note_store = None  # vidtt's own store, under VIDTT_CACHE_DIR
    request = {"videos": [str(clip12)], "segment_options": SMALL}
    assert notes.timeline(pipe, request).made == 6
    assert notes.timeline(pipe, request).made == 0
    assert cache_dir.exists() and any(cache_dir.rglob("*.json"))


def test_shots_cut_the_segments(pipe: Any, tmp_path: Path) -> None:
    plan = [ShotPlan(length=40, seed=1), ShotPlan(length=60, seed=2), ShotPlan(length=50, seed=3)]
    video = make_scene_video(tmp_path / "shots.mp4", shots=plan, fps=10, size=(160, 96))
    assert video.cuts == [40, 100]
    line = notes.timeline(
        pipe,
        {
            "videos": [str(video.path)],
            "segment_options": {**SMALL, "shots": True, "min_segment": 3, "max_segments": 3},
        },
    )
    assert line.cut == "shots"
    assert [round(n.start, 1) for n in line.notes] == [0.0, 4.0, 10.0]
    for note in line.notes:
        assert all(note.start <= t < note.end for t in note.frames)


def test_refine_looks_again_at_the_cited_segments(
    pipe: Any, clip12: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = Recorder(pipe, monkeypatch)
    record.replies["This is the timeline"] = "It happens at [0:04-0:06]."
    options = {**SMALL, "refine": True, "refine_frames": 6}
    answer = pipe.ask(str(clip12), "When?", strategy="segments", segment_options=options)
    last = record.calls[-1][0]
    (clip,) = clips_of(last)
    assert len(clip) == 6 and all(4 <= t < 6 for t in clip.timestamps)
    assert "A first answer" in prompt_text(last)
    assert answer.videos[0].timestamps == list(clip.timestamps)
    assert len(answer.segments) == 6


def test_bad_options_are_one_line_errors(pipe: Any, clip12: Path) -> None:
    with pytest.raises(OptionsError, match="max_segments") as bad:
        pipe.ask(str(clip12), "q", strategy="segments", segment_options={"max_segments": 0})
    assert "\n" not in str(bad.value)
    with pytest.raises(OptionsError, match="unknown option"):
        pipe.ask(str(clip12), "q", strategy="segments", segment_options={"frames": 3})
    with pytest.raises(OptionsError, match="strategy"):
        pipe.ask(str(clip12), "q", strategy="long")
    with pytest.raises(OptionsError, match="one video"):
        pipe.ask([str(clip12), str(clip12)], "q", strategy="segments")
    with pytest.raises(ConfigError, match="strategy"):
        load_config({"strategy": "segment"})


def test_the_serve_field_reaches_the_request() -> None:
    from vidtt.serve.protocol import ServeLimits, build_request, parse_chat

    body = {
        "messages": [{"role": "user", "content": "What happens?"}],
        "strategy": "segments",
        "segment_options": {"max_segments": 12},
    }
    request = build_request(parse_chat(body, ServeLimits()), ServeLimits())
    assert request.strategy == "segments" and request.segment_options == {"max_segments": 12}
    with pytest.raises(OptionsError, match="segment_options.frames"):
        build_request(
            parse_chat({**body, "segment_options": {"frames": 1}}, ServeLimits()), ServeLimits()
        )


def test_vidtt_run_answers_segment_requests(pipe: Any, clip12: Path, tmp_path: Path) -> None:
    from vidtt.jobs.local import plan_job, run_jobs

    lines = [
        {
            "id": "long",
            "video": str(clip12),
            "question": "What?",
            "strategy": "segments",
            "segment_options": SMALL,
        },
        {"id": "short", "video": str(clip12), "question": "What?"},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"
    summary = run_jobs(pipe, plan_job(source, out), progress=False)
    assert summary.answered == 2
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert records["long"]["strategy"] == "segments" and len(records["long"]["segments"]) == 6
    assert records["short"]["strategy"] == "direct" and records["short"]["segments"] == []


def test_timeline_formats() -> None:
    notes = [
        SegmentNote(start=0, end=75, note="A man --> talks.", transcript=["[0:01-0:03] hi"]),
        SegmentNote(start=75, end=3700, note="He leaves."),
    ]
    vtt = render_timeline(notes, "vtt")
    assert vtt.startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:01:15.000\nA man -> talks.\n")
    assert "00:01:15.000 --> 01:01:40.000\nHe leaves." in vtt
    md = render_timeline(notes, "md", "Timeline")
    assert "- **0:00-1:15** A man --> talks." in md and "- **1:15-1:01:40** He leaves." in md
    assert json.loads(render_timeline(notes, "json"))["segments"][1]["end"] == 3700


def hub_offline(cache: Path) -> dict[str, str]:
    return {"VIDTT_CACHE_DIR": str(cache), "HF_HUB_OFFLINE": "1"}


MODEL_FLAGS = ("--backend", "cpu", "--dtype", "float32", "--max-new-tokens", "5")
SEGMENT_FLAGS = ("--segment-option", "min_segment=3", "--segment-option", "shots=false")


def test_ask_long_json_and_summarize_console_scripts(
    llava_dir: Path, clip12: Path, tmp_path: Path, cache_dir: Path
) -> None:
    model = ("--model", str(llava_dir), *MODEL_FLAGS, *SEGMENT_FLAGS)
    asked = console(
        "ask", str(clip12), "-q", "What?", "--long", "--json", *model, env=hub_offline(cache_dir)
    )
    assert asked.returncode == 0, asked.stderr
    data = json.loads(asked.stdout)
    assert data["strategy"] == "segments"
    assert [(s["start"], s["end"]) for s in data["segments"]] == [(0, 3), (3, 6), (6, 9), (9, 12)]
    out = tmp_path / "chapters.vtt"
    summed = in_process(
        "summarize", str(clip12), "--output", str(out), *model, env=hub_offline(cache_dir)
    )
    assert summed.returncode == 0, summed.stderr
    assert out.read_text().startswith("WEBVTT\n\n1\n00:00:00.000 --> 00:00:03.000\n")
    bad = console(  # a real process: its stderr is the one line and nothing else
        "summarize",
        str(clip12),
        *model,
        "--segment-option",
        "max_segments=0",
        env=hub_offline(cache_dir),
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "max_segments" in bad.stderr
