"""`vidtt eval NAME --root FOLDER` end to end on small sets in the benchmarks' own layouts: each
asked in its benchmark's prompt style, read by its rule, scored by its groups."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from commands import in_process
from test_eval_command import _lines
from tiny_models import job_config

from vidtt.testing import make_video

pytestmark = pytest.mark.slow


def _videomme(root: Path, video: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = {
        "video_id": ["001", "001", "002"],
        "duration": ["short", "short", "long"],
        "domain": ["Knowledge"] * 3,
        "sub_category": ["Humanity & History"] * 3,
        "url": ["https://www.youtube.com/watch?v=x"] * 3,
        "videoID": ["aaa", "aaa", "bbb"],
        "question_id": ["001-1", "001-2", "002-1"],
        "task_type": ["Counting Problem", "Information Synopsis", "Counting Problem"],
        "question": ["How many?", "What is it about?", "How many squares?"],
        "options": [["A. 1.", "B. 2.", "C. 3.", "D. 4."]] * 3,
        "answer": ["C", "B", "A"],
    }
    (root / "videomme").mkdir(parents=True)
    pq.write_table(pa.table(rows), root / "videomme" / "test-00000-of-00001.parquet")
    (root / "data").mkdir()
    for name in ("aaa", "bbb"):
        shutil.copy(video, root / "data" / f"{name}.mp4")


def _mvbench(root: Path, video: Path) -> None:
    items = [
        {"video": "s1.mp4", "question": "What first?", "candidates": ["Sat.", "Ran."],
         "answer": "Ran.", "start": 0.2, "end": 0.8},
    ]  # fmt: skip
    (root / "json").mkdir(parents=True)
    (root / "json" / "action_sequence.json").write_text(json.dumps(items))
    folder = root / "video" / "star" / "Charades_v1_480"
    folder.mkdir(parents=True)
    shutil.copy(video, folder / "s1.mp4")


def _charades(root: Path, video: Path) -> None:
    root.mkdir(parents=True)
    (root / "charades_sta_test.txt").write_text("C1 0.1 0.5##a person opens a door.\n")
    (root / "Charades_v1_480").mkdir()
    shutil.copy(video, root / "Charades_v1_480" / "C1.mp4")


SETS = {
    "videomme": (_videomme, "videomme", "Select the best answer", "choice"),
    "mvbench": (_mvbench, "mvbench", "Carefully watch the video", "choice"),
    "charades-sta": (_charades, "strict", "Find the moment in the video", "grounding"),
}


@pytest.mark.parametrize("name", sorted(SETS))
def test_a_benchmark_folder_is_evaluated(name, llava_dir, tmp_path) -> None:
    build, rule, prompt, kind = SETS[name]
    video = make_video(tmp_path / "v.mp4", frames=24)
    root = tmp_path / "root"
    build(root, video)
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir, dtype="float32")))
    out = tmp_path / "out"
    done = in_process(
        "eval", name, str(config), "--root", str(root), "--output", str(out), "--quiet",
        "--max-new-tokens", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    scores = json.loads((out / "scores.json").read_text())
    assert scores["rule"] == rule and kind in scores and scores["errors"] == 0
    requests = _lines(out / "requests.jsonl")
    assert all(r["question"].startswith(prompt) for r in requests)
    predictions = _lines(out / "predictions.jsonl")
    assert len(predictions) == len(requests) and all(p["frame_times"] for p in predictions)
    if name == "videomme":
        assert set(scores["choice"]["groups"]["duration"]) == {"short", "long"}
    if name == "mvbench":  # a bounded task: only its clip is watched
        assert (requests[0]["start"], requests[0]["end"]) == (0.2, 0.8)
        assert all(0.2 <= t < 0.8 for t in predictions[0]["frame_times"][0])
