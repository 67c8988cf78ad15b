"""`vidtt eval` on a tiny JSONL set with the tiny llava model, and its scoring of records."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from commands import console
from tiny_models import job_config

from vidtt.eval.questions import Question
from vidtt.eval.run import EvalSet, load_set, request_of, score_answers, score_question
from vidtt.testing import make_video


def _write_set(folder: Path, with_missing: bool = False) -> Path:
    """3 choice questions on 2 videos, 1 grounding (with clip bounds), 1 open."""
    make_video(folder / "a.mp4", frames=24)
    make_video(folder / "b.mp4", frames=24)
    rows = [
        {
            "id": "c1",
            "video": "a.mp4",
            "question": "Colour?",
            "options": ["red", "blue"],
            "answer": "B",
            "category": "colour",
        },
        {
            "id": "c2",
            "video": "a.mp4",
            "question": "Shape?",
            "options": ["ball", "box", "cup"],
            "answer": 0,
            "category": "shape",
        },
        {
            "id": "c3",
            "video": "b.mp4",
            "question": "Size?",
            "options": ["big", "small"],
            "answer": "small",
            "category": "shape",
        },
        {
            "id": "g1",
            "video": "b.mp4",
            "question": "the square moves",
            "spans": [[0.2, 0.6]],
            "start": 0,
            "end": 1,
        },
        {"id": "o1", "video": "b.mp4", "question": "What is shown?", "answers": ["a square"]},
    ]
    if with_missing:
        rows.append({"id": "m1", "video": "gone.mp4", "question": "Q?", "answers": ["x"]})
    path = folder / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_eval_answers_scores_and_resumes(llava_dir, tmp_path) -> None:
    questions = _write_set(tmp_path)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    out = tmp_path / "out"
    args = ["eval", str(questions), str(config), "--output", str(out), "--quiet"]
    done = console(*args, "--max-new-tokens", "3")
    assert done.returncode == 0, done.stderr
    assert "5 answered, 0 failed, 0 already done" in done.stderr
    assert "accuracy" in done.stdout and "mIoU" in done.stdout and "exact match" in done.stdout
    predictions = {p["id"]: p for p in _lines(out / "predictions.jsonl")}
    assert sorted(predictions) == ["c1", "c2", "c3", "g1", "o1"]
    for p in predictions.values():
        assert isinstance(p["prediction"], str) and p["visual_tokens"] > 0 and p["seconds"] > 0
    assert predictions["c1"]["groups"] == {"category": "colour"}
    requests = {r["id"]: r for r in _lines(out / "requests.jsonl")}
    assert requests["g1"]["start"] == 0 and requests["g1"]["end"] == 1
    assert requests["g1"]["spans"] is True and "spans" not in requests["c1"]
    assert "start" not in requests["c1"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["questions"] == 5 and scores["errors"] == 0
    assert scores["choice"]["accuracy"]["count"] == 3
    groups = scores["choice"]["groups"]["category"]
    assert {k: v["count"] for k, v in groups.items()} == {"colour": 1, "shape": 2}
    assert scores["grounding"]["count"] == 1 and scores["open"]["exact"]["count"] == 1
    report = json.loads((out / "report.json").read_text())
    assert [p["name"] for p in report["points"]] == ["set"] and report["plots"] == []
    assert (out / "report.html").is_file() and not list(out.glob("*.png"))  # one setting
    before = (out / "answers.jsonl").read_text()

    again = console(*args)
    assert again.returncode == 0, again.stderr
    assert "0 answered, 0 failed, 5 already done" in again.stderr
    assert (out / "answers.jsonl").read_text() == before


def test_a_missing_video_is_one_error_before_the_model(tmp_path) -> None:
    questions = _write_set(tmp_path, with_missing=True)
    started = time.monotonic()
    done = console("eval", str(questions), "--output", str(tmp_path / "out"), "--model", "nowhere")
    assert done.returncode == 2, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("vidtt: error:")]
    assert len(errors) == 1 and "1 problem(s)" in errors[0], done.stderr
    assert "video not found" in done.stderr and "gone.mp4" in done.stderr
    assert not (tmp_path / "out" / "answers.jsonl").exists()
    assert time.monotonic() - started < 60


def test_a_benchmark_name_without_root_is_one_error(tmp_path) -> None:
    with pytest.raises(Exception, match="give --root FOLDER"):
        load_set("Video-MME")


def _question(**fields) -> Question:
    base = {"id": "q", "video": Path("a.mp4"), "question": "Which?"}
    return Question(**{**base, **fields})


def test_scoring_hand_written_records(tmp_path) -> None:
    choice = _question(id="c", kind="choice", options=["x", "y", "z"], answer="B")
    both = _question(id="d", kind="choice", options=["x", "y"], answer="A", groups={"g": "1"})
    span = _question(id="s", kind="grounding", spans=[(2.0, 4.0)])
    open_ = _question(id="o", kind="open", answer=["the cat"])
    usage = {"usage": {"visual_tokens": 12}, "timings": {"prefill": 0.25, "decode": 0.5}}
    records = {
        "c": {"id": "c", "text": "B", **usage},
        "d": {"id": "d", "text": "A or B"},
        "s": {"id": "s", "text": "From 2 to 5 seconds."},
        "o": {"id": "o", "text": "A cat sits", **usage},
    }
    found = score_question(choice, records["c"], "strict")
    assert found["correct"] is True and found["extracted"] == "B"
    assert found["visual_tokens"] == 12 and found["seconds"] == 0.75
    assert score_question(choice, {"id": "c", "text": "C"}, "strict")["correct"] is False
    assert score_question(both, records["d"], "strict")["correct"] is None  # two letters
    grounded = score_question(span, records["s"], "strict")  # read from the text here
    assert grounded["extracted"] == [2.0, 5.0] and grounded["iou"] == pytest.approx(2 / 3)
    piped = {"id": "s", "text": "2 - 5 s", "spans": [{"start": 1.0, "end": 4.0, "text": ""}]}
    assert score_question(span, piped, "strict")["extracted"] == [1.0, 4.0]  # the pipeline's
    unread = {"id": "s", "text": "From 2 to 5 seconds.", "spans": []}
    assert score_question(span, unread, "strict")["correct"] is None  # it read no time
    opened = score_question(open_, records["o"], "strict")
    assert opened["correct"] is False and opened["contains"] is True
    failed = score_question(choice, {"id": "c", "error": "boom"}, "strict")
    assert failed["correct"] is None and failed["error"] == "boom"

    eval_set = EvalSet("mine", [choice, both, span, open_])
    scores, _ = score_answers(eval_set, records, tmp_path)
    assert scores["choice"]["accuracy"]["value"] == 0.5 and scores["choice"]["no_answer"] == 1
    assert scores["grounding"]["r@0.5"] == 1.0 and scores["grounding"]["r@0.7"] == 0.0
    assert scores["open"]["contains"]["value"] == 1.0 and scores["open"]["exact"]["value"] == 0
    assert len(_lines(tmp_path / "predictions.jsonl")) == 4


def test_requests_carry_the_benchmark_prompt() -> None:
    q = _question(kind="choice", options=["x", "y", "z", "w"], answer="A", start=1.0, end=3.0)
    request = request_of(q, "videomme")
    assert request["question"].startswith("Select the best answer")
    assert "(A, B, C, or D)" in request["question"] and "\nD. w\n" in request["question"]
    assert request["question"].endswith("The best answer is:")
    assert (request["start"], request["end"]) == (1.0, 3.0)
    assert request_of(q, "mlvu")["question"].endswith("Best option: (")
