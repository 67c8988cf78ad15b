"""`vidtt ask --library`: the library's best-matching moments shown to the model, each video's
frames around them, and the answer with the moments it can cite; mistakes are one line."""

from __future__ import annotations

import json

import pytest
from test_index_search import BLUE, RED, vidtt
from tiny_models import job_config

from vidtt.testing import make_square_video

pytestmark = pytest.mark.slow


def test_ask_a_library(env, tmp_path, llava_dir) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), RED)
    make_square_video(videos / "blue.mp4", (8.0, 11.0), BLUE)
    indexed = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert indexed.returncode == 0, indexed.stderr
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
