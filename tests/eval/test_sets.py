"""Question sets: each benchmark's files in its published layout, and vidtt's JSONL format."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vidtt.errors import OptionsError
from vidtt.eval.benchmarks import read_benchmark
from vidtt.eval.questions import QuestionsError, read_questions
from vidtt.testing import make_video

Place = Callable[[Path], Path]


@pytest.fixture(scope="module")
def one_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("media") / "v.mp4", frames=12)


@pytest.fixture
def place(one_video: Path) -> Place:
    """Put a copy of a tiny video at a path (folders made)."""

    def put(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(one_video, path)
        return path

    return put


def _dump(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data), encoding="utf-8")


def test_videomme_parquet(tmp_path: Path, place: Place) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        "video_id": ["001", "001"],
        "duration": ["short", "short"],
        "domain": ["Knowledge", "Knowledge"],
        "sub_category": ["Humanity & History", "Humanity & History"],
        "url": ["https://www.youtube.com/watch?v=fFjv93ACGo8"] * 2,
        "videoID": ["fFjv93ACGo8", "fFjv93ACGo8"],
        "question_id": ["001-1", "001-2"],
        "task_type": ["Counting Problem", "Information Synopsis"],
        "question": ["How many?", "What is it about?"],
        "options": [
            ["A. 1.", "B. 2.", "C. 3.", "D. 4."],
            ["A. War.", "B. Art.", "C. Sea.", "D. Sky."],
        ],
        "answer": ["C", "B"],
    }
    (tmp_path / "videomme").mkdir()
    pq.write_table(pa.table(rows), tmp_path / "videomme" / "test-00000-of-00001.parquet")
    place(tmp_path / "data" / "fFjv93ACGo8.mp4")
    first, second = read_benchmark("Video-MME", tmp_path)
    assert (first.id, first.kind, first.answer) == ("001-1", "choice", "C")
    assert first.options == ["1.", "2.", "3.", "4."]
    assert first.references == ["3."]
    assert first.video == tmp_path / "data" / "fFjv93ACGo8.mp4"
    assert first.groups["duration"] == "short"
    assert first.groups["category"] == "Counting Problem"
    assert second.answer == "B" and second.groups["domain"] == "Knowledge"


def test_videomme_parquet_without_pyarrow_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "videomme").mkdir()
    (tmp_path / "videomme" / "test.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)  # as if not installed
    with pytest.raises(QuestionsError, match="needs pyarrow: pip install"):
        read_benchmark("videomme", tmp_path)


def test_mvbench_answer_text_becomes_letter_and_bounds_kept(tmp_path: Path, place: Place) -> None:
    _dump(
        tmp_path / "json" / "action_sequence.json",
        [
            {
                "video": "3MSZA.mp4",
                "question": "What did the person do first?",
                "candidates": ["Sat on the bed.", "Opened the door.", "Took the cup."],
                "answer": "Opened the door.",
                "start": 2.5,
                "end": 9.0,
            }
        ],
    )
    _dump(
        tmp_path / "json" / "object_existence.json",
        [
            {
                "video": "video_10000.mp4",
                "question": "Is there a cube?",
                "candidates": ["yes", "no"],
                "answer": "no",
            }
        ],
    )
    place(tmp_path / "video" / "star" / "Charades_v1_480" / "3MSZA.mp4")
    place(tmp_path / "video" / "clevrer" / "video_validation" / "video_10000.mp4")
    questions = {q.id: q for q in read_benchmark("mvbench", tmp_path)}
    seq = questions["action_sequence-1"]
    assert (seq.answer, seq.start, seq.end) == ("B", 2.5, 9.0)
    assert seq.groups["category"] == "Action Sequence"
    exist = questions["object_existence-1"]
    assert exist.answer == "B" and exist.start is None


def test_mvbench_missing_videos_listed_together_with_folder(tmp_path: Path) -> None:
    items = [
        {"video": f"v{i}.mp4", "question": "Q?", "candidates": ["a", "b"], "answer": "a"}
        for i in range(3)
    ]
    _dump(tmp_path / "json" / "moving_count.json", items)
    with pytest.raises(QuestionsError) as caught:
        read_benchmark("mvbench", tmp_path)
    message = str(caught.value)
    assert f"3 video(s) missing under {tmp_path / 'video'}" in message
    assert all(f"v{i}.mp4" in message for i in range(3))


def test_longvideobench_index_answer_and_groups(tmp_path: Path, place: Place) -> None:
    item = {
        "video_id": "86CxyhFV9MI",
        "question": "What is the man holding?",
        "question_wo_referring_query": "What is he holding?",
        "candidates": ["a pen", "a cup", "a phone", "a book", "a hat"],
        "correct_choice": 3,
        "position": [10],
        "topic_category": "NP-News-Programs",
        "question_category": "S2E",
        "level": "L1-Perception",
        "id": "86CxyhFV9MI_0",
        "video_path": "86CxyhFV9MI.mp4",
        "subtitle_path": "86CxyhFV9MI_en.json",
        "duration_group": 600,
        "starting_timestamp_for_subtitles": 0,
        "duration": 527.1,
        "view_count": 100,
    }
    _dump(tmp_path / "lvb_val.json", [item])
    place(tmp_path / "videos" / "86CxyhFV9MI.mp4")
    (question,) = read_benchmark("longvideobench", tmp_path)
    assert (question.id, question.answer, question.options and len(question.options)) == (
        "86CxyhFV9MI_0",
        "D",
        5,
    )
    assert question.groups == {
        "category": "S2E",
        "duration": "600",
        "level": "L1-Perception",
        "topic_category": "NP-News-Programs",
    }


def test_mlvu_choices_and_open_answers(tmp_path: Path, place: Place) -> None:
    root = tmp_path / "MLVU"
    _dump(
        root / "json" / "1_plotQA.json",
        [
            {
                "video": "movie101_66.mp4",
                "duration": 246,
                "question": "What color is the car?",
                "candidates": ["Red", "Blue", "Green", "White"],
                "answer": "Green",
                "question_type": "plotQA",
            }
        ],
    )
    _dump(
        root / "json" / "9_summary.json",
        [
            {
                "video": "s1.mp4",
                "duration": 600,
                "question": "Summarise.",
                "answer": "A day.",
                "question_type": "summary",
            }
        ],
    )
    place(root / "video" / "1_plotQA" / "movie101_66.mp4")
    place(root / "video" / "9_summary" / "s1.mp4")
    choice, summary = read_benchmark("MLVU", tmp_path)
    assert (choice.id, choice.answer, choice.groups["category"]) == ("1_plotQA-1", "C", "plotQA")
    assert (summary.kind, summary.answer) == ("open", ["A day."])


def test_charades_sta_lines(tmp_path: Path, place: Place) -> None:
    text = "3MSZA 24.3 30.4##person turn a light on.\n3MSZA 30.4 36.0##person opens a door.\n"
    (tmp_path / "charades_sta_test.txt").write_text(text)
    place(tmp_path / "Charades_v1_480" / "3MSZA.mp4")
    first, second = read_benchmark("charades-sta", tmp_path)
    assert (first.kind, first.spans, first.question) == (
        "grounding",
        [(24.3, 30.4)],
        "person turn a light on.",
    )
    assert second.id == "3MSZA-2" and second.spans == [(30.4, 36.0)]


def test_charades_sta_bad_lines_and_missing_video_together(tmp_path: Path) -> None:
    text = "AAAAA 5.0 2.0##backwards.\nnot a line\nBBBBB 1 2##fine.\n"
    (tmp_path / "charades_sta_test.txt").write_text(text)
    with pytest.raises(QuestionsError) as caught:
        read_benchmark("charades_sta", tmp_path)
    message = str(caught.value)
    assert "line 1: span end 2.0 is not after start 5.0" in message
    assert "line 2: not `VIDEOID start end##sentence`" in message
    assert str(tmp_path / "Charades_v1_480" / "BBBBB.mp4") in message


def test_timelens_queries_and_spans(tmp_path: Path, place: Place) -> None:
    _dump(
        tmp_path / "charades-timelens.json",
        {
            "AO8RW": {
                "duration": 31.0,
                "spans": [[0.0, 6.5], [[7.0, 9.0], [12.0, 15.0]]],
                "queries": ["a  person sits.", "he stands"],
            }
        },
    )
    place(tmp_path / "videos" / "charades" / "AO8RW.mp4")
    first, second = read_benchmark("timelens", tmp_path)
    assert (first.id, first.question, first.spans) == (
        "charades-AO8RW-0",
        "a person sits",
        [(0.0, 6.5)],
    )
    assert second.spans == [(7.0, 9.0), (12.0, 15.0)]
    assert first.groups == {"subset": "charades"}


def test_unknown_benchmark_name_says_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="did you mean 'mvbench'.*videomme, mvbench"):
        read_benchmark("mvbnech", tmp_path)


def test_own_jsonl_format(tmp_path: Path, place: Place) -> None:
    place(tmp_path / "clips" / "a.mp4")
    lines = [
        {
            "video": "clips/a.mp4",
            "question": "Which?",
            "options": ["(A) red", "(B) blue"],
            "answer": "B",
            "category": "color",
            "level": 2,
        },
        {"id": "q2", "video": "clips/a.mp4", "question": "Say it.", "answers": ["hi", "hello"]},
        {"video": "clips/a.mp4", "question": "When?", "spans": [[1.0, 2.0]], "start": 0, "end": 5},
    ]
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    choice, open_, grounding = read_questions(path)
    assert (choice.id, choice.options, choice.answer) == ("set-1", ["red", "blue"], "B")
    assert choice.groups == {"category": "color", "level": "2"}
    assert choice.video == (tmp_path / "clips" / "a.mp4").resolve()
    assert (open_.id, open_.kind, open_.answer) == ("q2", "open", ["hi", "hello"])
    assert (grounding.spans, grounding.start, grounding.end) == ([(1.0, 2.0)], 0.0, 5.0)


def test_own_jsonl_every_problem_in_one_error(tmp_path: Path, place: Place) -> None:
    place(tmp_path / "a.mp4")
    good = {"video": "a.mp4", "question": "Q?"}
    lines = [
        "{not json",
        json.dumps({"video": "a.mp4", "answer": "x"}),
        json.dumps({**good, "options": ["x", "y"]}),
        json.dumps({**good, "options": ["x", "y"], "answer": "z"}),
        json.dumps({**good, "spans": [[5, 3]]}),
        json.dumps({"video": "gone.mp4", "question": "Q?", "answer": "x"}),
        json.dumps({**good, "answer": "x", "vidoe": "a.mp4"}),
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines))
    with pytest.raises(QuestionsError) as caught:
        read_questions(path)
    message = str(caught.value)
    assert "7 problem(s)" in message
    for expected in (
        "line 1: not valid JSON",
        "line 2: missing 'question'",
        "line 3: 'options' without an 'answer'",
        "line 4: answer 'z' is not one of the options",
        "line 5: span [5, 3]: end must be after start",
        f"line 6: video not found: {(tmp_path / 'gone.mp4').resolve()}",
        "line 7: unknown field 'vidoe' (did you mean 'video'?)",
    ):
        assert expected in message


def test_own_jsonl_lists_twenty_then_counts(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_text("\n".join(["[]"] * 25))
    with pytest.raises(QuestionsError) as caught:
        read_questions(path)
    message = str(caught.value)
    assert "line 20:" in message and "line 21:" not in message
    assert "... and 5 more" in message
