"""`vidtt ask --library`: the library's best-matching moments shown to the model, each video's
frames around them, and the answer with the moments it can cite; mistakes are one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from test_index_search import BLUE, RED, vidtt
from tiny_models import job_config

from vidtt.testing import make_square_video

pytestmark = pytest.mark.slow


def index_red_and_blue(env: dict[str, str], tmp_path: Path) -> None:
    """A library `mine` of two videos: a red square at 4-7 s, a blue one at 8-11 s."""
    videos = tmp_path / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), RED)
    make_square_video(videos / "blue.mp4", (8.0, 11.0), BLUE)
    indexed = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert indexed.returncode == 0, indexed.stderr


def test_ask_a_library(env, tmp_path, llava_dir) -> None:
    index_red_and_blue(env, tmp_path)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    asked = vidtt(
        env, "ask", "--library", "mine", "-q", "When is the red square shown?",
        "--config", str(config), "--moments", "2", "--json",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    found = json.loads(asked.stdout)
    [moment] = found["moments"]  # red's two frames, 4-6 and 6-8 s, joined into one moment
    assert moment["path"].endswith("red.mp4") and (moment["start"], moment["end"]) == (2.0, 10.0)
    [used] = found["answer"]["videos"]
    assert used["timestamps"] and all(2.0 <= t < 10.0 for t in used["timestamps"])
    plain = vidtt(env, "ask", "--library", "mine", "-q", "Which red?", "--config", str(config))
    assert plain.returncode == 0 and "red.mp4  2.0-10.0 s" in plain.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ask", "-q", "What?"], "give the VIDEO to ask about (or --library NAME"),
        (["ask", "{video}", "--library", "mine", "-q", "What?"], "give no VIDEO"),
        (["ask", "--library", "mine", "-q", "a cat", "--moments", "0"], "--moments must be"),
        (["ask", "--library", "mine", "-q", "a cat"], "no moment of library 'mine' matches"),
    ],
)
def test_mistakes_are_one_line(env, tmp_path, args, said) -> None:
    video = make_square_video(tmp_path / "v.mp4", (1.0, 2.0), RED, seconds=3)
    vidtt(env, "index", str(video), "--library", "mine", "--embedder", "colour")
    done = vidtt(env, *[a.replace("{video}", str(video)) for a in args])
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def shown(number: int, start: float, end: float, path: str = "v.mp4") -> Any:
    from vidtt.library.asking import Shown

    return Shown(number, path, start, end)


def cited(text: str, moments: list[Any], frames: list[list[float]]) -> list[list[tuple]]:
    from types import SimpleNamespace

    from vidtt.library.asking import cite_spans
    from vidtt.types import Answer

    answer = Answer.model_construct(text=text, spans=None)
    clips = [SimpleNamespace(timestamps=times) for times in frames]
    cite_spans(answer, moments, clips, SimpleNamespace(model=None))
    assert answer.spans == [span for moment in moments for span in moment.spans]
    return [[(s.start, s.end) for s in moment.spans] for moment in moments]


def test_spans_are_kept_by_the_moment_named() -> None:
    moments = [shown(1, 2.0, 10.0, "a.mp4"), shown(2, 3.0, 9.0, "b.mp4")]
    frames = [[2.0, 4.0, 6.0, 8.0], [3.0, 5.0, 7.0]]
    assert cited("Moment 2, 4 - 6 seconds.", moments, frames) == [[], [(4.0, 6.0)]]
    # two videos' times overlap: each span stays with its moment, never merged across them
    both = "Moment 1: 3 - 5 seconds. In moment #2 it is at 4.5 - 8 seconds."
    assert cited(both, [shown(1, 2.0, 10.0), shown(2, 3.0, 9.0)], frames) == [
        [(3.0, 5.0)],
        [(4.5, 8.0)],
    ]
    # no moment named: the first moment whose stretch holds it; clamped to it
    assert cited("From 9 to 12 seconds.", [shown(1, 2.0, 10.0), shown(2, 3.0, 9.0)], frames) == [
        [(9.0, 10.0)],
        [],
    ]
    # outside every moment, or a moment that was not shown: nothing
    assert cited("At 30 - 31 seconds.", [shown(1, 2.0, 10.0)], frames[:1]) == [[]]
    assert cited("Moment 7, 40 - 41 seconds", [shown(1, 2.0, 10.0)], frames[:1]) == [[]]
    assert cited("The red one.", [shown(1, 2.0, 10.0)], frames[:1]) == [[]]


def test_ask_a_library_when(env, tmp_path, llava_dir) -> None:
    from transformers import AutoTokenizer

    index_red_and_blue(env, tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(llava_dir)
    ids = tokenizer("Moment 1, 5 - 6 seconds", add_special_tokens=False)["input_ids"]
    ids.append(tokenizer.eos_token_id)
    bias = [[ids[: k + 1], 1e4 * (k + 1)] for k in range(len(ids))]
    config = tmp_path / "pipe.json"
    generation = {"max_new_tokens": 48, "sequence_bias": bias}
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32", generation=generation)))
    asked = vidtt(
        env, "ask", "--library", "mine", "-q", "When is the red square shown?",
        "--config", str(config), "--when", "--json", "--moments", "1",
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    found = json.loads(asked.stdout)
    assert found["answer"]["text"] == "Moment 1, 5 - 6 seconds"
    [moment] = found["moments"]
    assert moment["path"].endswith("red.mp4")
    assert [(s["start"], s["end"]) for s in moment["spans"]] == [(5.0, 6.0)]
    assert [(s["start"], s["end"]) for s in found["answer"]["spans"]] == [(5.0, 6.0)]
    lines = vidtt(
        env, "ask", "--library", "mine", "-q", "When is the red square shown?",
        "--config", str(config), "--when", "--moments", "1",
    )  # fmt: skip
    assert lines.returncode == 0 and "red.mp4  2.0-10.0 s  [5.0-6.0 s]" in lines.stderr
