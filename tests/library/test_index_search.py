"""`vidtt index` and `vidtt search` as users run them (the console script), with the `colour`
test embedder (features computed from the pixels) installed as a plugin: generated videos whose
content is known are found at the right moments, re-indexing touches only what changed, and
mistakes are one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidtt.testing import make_square_video

pytestmark = pytest.mark.slow
VIDTT = str(Path(sys.executable).with_name("vidtt"))
RED, BLUE, GREEN = (220, 30, 30), (30, 60, 220), (30, 180, 30)


def vidtt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VIDTT, *args], capture_output=True, text=True, env=env, timeout=300)


def found(env: dict[str, str], text: str) -> list[dict]:
    done = vidtt(env, "search", text, "--library", "mine", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_index_then_search_finds_the_moment(env, tmp_path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), RED)
    make_square_video(videos / "blue.mp4", (8.0, 11.0), BLUE)
    make_square_video(videos / "plain.mp4", (99.0, 99.0), RED)  # never shown
    done = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert done.returncode == 0, done.stderr
    assert "3 indexed (18 moments), 0 unchanged, 0 removed, 0 failed" in done.stderr

    red = found(env, "a red square")
    assert [Path(h["path"]).name for h in red] == ["red.mp4", "red.mp4"]
    assert [(h["start"], h["end"]) for h in red] == [(4.0, 6.0), (6.0, 8.0)]
    assert all(Path(h["thumbnail"]).read_bytes()[:2] == b"\xff\xd8" for h in red)  # JPEGs
    blue = found(env, "blue")
    assert {Path(h["path"]).name for h in blue} == {"blue.mp4"}
    assert all(8.0 <= h["start"] < 11.0 for h in blue)
    table = vidtt(env, "search", "red", "--library", "mine", "--limit", "1")
    assert table.stdout.count("\n") == 1 and "red.mp4  4.0-6.0 s  frame  " in table.stdout
    assert table.stdout.split()[5].endswith("/000004000.jpg")  # the thumbnail's path

    again = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert "0 indexed (0 moments), 3 unchanged, 0 removed" in again.stderr
    make_square_video(videos / "plain.mp4", (0.0, 3.0), GREEN)  # changed
    (videos / "blue.mp4").unlink()  # removed
    after = vidtt(env, "index", str(videos), "--library", "mine", "--embedder", "colour")
    assert "1 indexed (6 moments), 1 unchanged, 1 removed" in after.stderr, after.stderr
    assert [(Path(h["path"]).name, h["start"]) for h in found(env, "green")] == [
        ("plain.mp4", 0.0),
        ("plain.mp4", 2.0),
    ]
    assert found(env, "blue") == []


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["index", "nowhere/*.mp4", "--library", "mine"], "no video found at nowhere/*.mp4"),
        (["index", "{video}", "--library", "mine", "--embedder", "colur"], "unknown embedder"),
        (["index", "{video}", "--library", "mine", "--every", "0"], "--every must be more"),
        (["search", "red", "--library", "none-here"], "none-here"),
        (["search", "red", "--library", "mine", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_mistakes_are_one_line(env, tmp_path, args, said) -> None:
    video = make_square_video(tmp_path / "v.mp4", (1.0, 2.0), RED, seconds=3)
    done = vidtt(env, *[a.replace("{video}", str(video)) for a in args])
    assert done.returncode == 2, done.stderr
    assert said in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_what_is_said_is_indexed_too(env, tmp_path) -> None:
    import lancedb

    from vidtt.plugins import registry
    from vidtt.testing import make_audio
    from vidtt.testing.speech import make_tiny_whisper
    from vidtt.types import VideoSource

    whisper = make_tiny_whisper(tmp_path / "whisper")
    videos = tmp_path / "videos"
    videos.mkdir()
    talk = make_audio(videos / "talk.mp4", [(1, 3, 440)], seconds=6, video=6)
    make_square_video(videos / "silent.mp4", (1.0, 2.0), RED, seconds=4)  # no audio: frames only
    heard = registry.transcriber("whisper")
    lines = heard.transcribe(VideoSource.of(str(talk)), heard.options(model=str(whisper)))
    said = [(round(s.start, 3), round(s.end, 3), s.text.strip()) for s in lines.segments]
    assert said and all(text for _, _, text in said)
    done = vidtt(
        env, "index", str(videos), "--library", "mine", "--embedder", "colour",
        "--transcribe", "--transcriber-option", f"model={whisper}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "2 indexed" in done.stderr and "0 failed" in done.stderr
    moments = lancedb.connect(str(tmp_path / "libraries" / "mine")).open_table("moments")
    rows = moments.search().where("kind = 'transcript'").to_arrow().to_pylist()
    assert [(round(r["start"], 3), round(r["end"], 3), r["text"]) for r in rows] == said
    assert {Path(r["path"]).name for r in rows} == {"talk.mp4"}
