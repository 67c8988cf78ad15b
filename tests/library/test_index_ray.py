"""`vidtt index --ray`: the console script on a private Ray cluster (2 actors) writes the same
moments as the local `vidtt index`, picks up after a partial run, touches only what changed on
a rerun, and keeps a broken video a failure line; the options and the worker's checks without
Ray. The cluster test is marked `slow` and `ray` (`pytest -m "not ray"` leaves it out)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from vidtt.cli import main
from vidtt.errors import LibraryError
from vidtt.library import Plan, Video
from vidtt.library.indexing import IndexWork
from vidtt.library.on_ray import actor_options, index_on_ray, on_this_gpu, open_on_worker
from vidtt.testing import make_square_video

VIDTT = str(Path(sys.executable).with_name("vidtt"))
RED, BLUE, GREEN = (220, 30, 30), (30, 60, 220), (30, 180, 30)


def vidtt(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VIDTT, *args], capture_output=True, text=True, env=env, timeout=300)


def table(env: dict[str, str], library: str, name: str) -> list[dict[str, Any]]:
    import lancedb

    db = lancedb.connect(str(Path(env["VIDTT_LIBRARY_DIR"]) / library))
    return list(db.open_table(name).to_arrow().to_pylist())


def moments(env: dict[str, str], library: str) -> dict[str, list[tuple[Any, ...]]]:
    """Per video (its file name): its moments' kind, start, end and vector, in time order."""
    found: dict[str, list[tuple[Any, ...]]] = {}
    for row in table(env, library, "moments"):
        kept = (row["kind"], row["start"], row["end"], tuple(row["vector"]))
        found.setdefault(Path(row["path"]).name, []).append(kept)
    return {name: sorted(rows) for name, rows in found.items()}


def runs(env: dict[str, str], library: str) -> dict[str, str]:
    """Per video (its file name): the run that wrote its moments."""
    return {Path(row["path"]).name: row["run"] for row in table(env, library, "videos")}


@pytest.mark.slow
@pytest.mark.ray
def test_index_on_ray_equals_the_local_index_and_resumes(env, tmp_path) -> None:
    pytest.importorskip("ray")
    videos = tmp_path / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), RED)
    make_square_video(videos / "blue.mp4", (8.0, 11.0), BLUE)
    make_square_video(videos / "plain.mp4", (99.0, 99.0), RED)
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    colour = ("--embedder", "colour")
    partial = vidtt(env, "index", str(videos / "red.mp4"), "--library", "spread", *colour)
    assert partial.returncode == 0, partial.stderr  # as if Ctrl-C came after the first video
    before = runs(env, "spread")

    ray = ("--ray", "local", "--actors", "2")
    spread = vidtt(env, "index", str(videos), "--library", "spread", *colour, *ray)
    assert spread.returncode == 1, spread.stderr
    assert "2 indexed (12 moments), 1 unchanged, 0 removed, 1 failed" in spread.stderr
    assert f"vidtt: failed: {videos / 'broken.mp4'}: " in spread.stderr
    assert "not a readable video" in spread.stderr
    assert "Traceback" not in spread.stderr and "lancedb fork" not in spread.stderr
    assert runs(env, "spread")["red.mp4"] == before["red.mp4"]  # left as the partial run wrote it
    here = vidtt(env, "index", str(videos), "--library", "here", *colour)
    assert here.returncode == 1 and "3 indexed (18 moments)" in here.stderr, here.stderr
    assert moments(env, "spread") == moments(env, "here")
    assert set(moments(env, "spread")) == {"red.mp4", "blue.mp4", "plain.mp4"}
    thumbs = [row["thumbnail"] for row in table(env, "spread", "moments")]
    assert all(Path(t).read_bytes()[:2] == b"\xff\xd8" for t in thumbs)  # the actors' JPEGs

    before = runs(env, "spread")
    make_square_video(videos / "blue.mp4", (0.0, 3.0), GREEN)  # changed
    (videos / "broken.mp4").unlink()
    grown = ("--ray", "local", "--actors", "1-2", "--quiet")
    again = vidtt(env, "index", str(videos), "--library", "spread", *colour, *grown)
    assert again.returncode == 0, again.stderr
    assert "1 indexed (6 moments), 2 unchanged, 0 removed, 0 failed" in again.stderr
    after = runs(env, "spread")
    assert after["blue.mp4"] != before["blue.mp4"]
    assert {k: after[k] for k in ("red.mp4", "plain.mp4")} == {
        k: before[k] for k in ("red.mp4", "plain.mp4")
    }
    assert {
        m[1] for m in moments(env, "spread")["blue.mp4"] if m[3][1] > 0.5
    }  # green == {0.0, 2.0}


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--actors", "2"], "--actors needs --ray"),
        (["--ray", "--actors", "3-1"], "MIN no larger than MAX"),
        (["--ray", "--actors", "none"], "expected a count (4) or a range"),
    ],
)
def test_actor_mistakes_are_one_line(tmp_path, capsys, extra, said) -> None:
    code = 0
    try:
        code = main(["index", str(tmp_path), "--library", str(tmp_path / "lib"), *extra])
    except SystemExit as exit:  # argparse
        code = int(exit.code or 0)
    assert code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # argparse's own show the usage first
    assert said in last and last.count("vidtt") == 1, err


def test_a_library_the_worker_cannot_reach_is_one_line(tmp_path) -> None:
    with pytest.raises(LibraryError, match=r"is not on the Ray worker .*shared file system"):
        open_on_worker(str(tmp_path / "elsewhere"), tools=None)


def test_actors_take_a_gpu_only_for_cuda() -> None:
    on_gpu = IndexWork(embedder="clip", embedder_options={"device": "cuda:1", "batch_size": 8})
    assert actor_options(on_gpu) == {"num_cpus": 1, "num_gpus": 1}
    assert actor_options(IndexWork()) == {"num_cpus": 1, "num_gpus": 0}
    assert on_this_gpu(on_gpu).embedder_options == {"device": "cuda", "batch_size": 8}
    assert on_this_gpu(IndexWork()) == IndexWork()
    from vidtt.config import PipelineConfig

    notes_on_gpu = IndexWork(notes=PipelineConfig(model="m", backend="cuda"))
    assert actor_options(notes_on_gpu) == {"num_cpus": 1, "num_gpus": 1}
    assert actor_options(IndexWork(notes=PipelineConfig(model="m", backend="cpu")))["num_gpus"] == 0


def test_nothing_to_index_needs_no_cluster(monkeypatch) -> None:
    """Only removals: done here, without Ray (it may not even be installed)."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError

    class Removing:
        def remove(self, ids: list[str]) -> int:
            return len(ids)

    plan = Plan(removed=[Video("/gone/a.mp4", 1, 1)], unchanged=[Video("/kept/b.mp4", 1, 1)])
    done = index_on_ray(Removing(), plan, IndexWork(), actors=2, progress=False)
    assert (done.removed, done.unchanged, done.indexed) == (1, 1, 0)
