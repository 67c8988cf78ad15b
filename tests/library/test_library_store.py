"""The video library's storage (vidtt.library): incremental plans, replacing a video's moments,
hybrid search with filters, and safety against a kill mid-write and against two writers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lancedb")

from vidtt.errors import LibraryError, LibraryMismatchError
from vidtt.library import Library, Moment, Video, locate, video_id

DIM = 8
ROOT = Path(__file__).resolve().parents[2]


def axis(i: int, dim: int = DIM) -> np.ndarray:
    vector = np.full(dim, 0.01, dtype=np.float32)
    vector[i] = 1.0
    return vector


def notes(*texts: str, dim: int = DIM) -> list[Moment]:
    """One note a second, the i-th pointing along axis i."""
    return [Moment("note", i, i + 1, text, axis(i % dim, dim)) for i, text in enumerate(texts)]


def video(path: str, size: int = 100, mtime_ns: int = 10**18, duration: float = 60.0) -> Video:
    return Video(path, size, mtime_ns, duration)


@pytest.fixture
def library(tmp_path: Path) -> Library:
    return Library.open(str(tmp_path / "lib"), dim=DIM, embedder="test-embedder")


def run_child(code: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = textwrap.dedent(code)
    return subprocess.Popen([sys.executable, "-c", script, *args], env=env)


def test_put_plan_remove_round_trip(library: Library) -> None:
    videos = [video(f"/videos/{name}.mp4") for name in ("a", "b", "c")]
    for item in videos:
        assert library.put_video(item, notes("one", "two", "three")) == 3
    stats = library.stats()
    assert (stats["videos"], stats["done"], stats["moments"]) == (3, 3, 9)
    plan = library.plan(videos)
    assert plan.unchanged == videos and not (plan.new or plan.changed or plan.removed)
    assert library.put_video(videos[0], notes("only one")) == 1  # replaces, never adds
    assert library.stats()["moments"] == 7
    library.remove([videos[1].video_id])
    assert library.stats()["videos"] == 2 and library.stats()["moments"] == 4
    plan = library.plan(videos)
    assert [v.path for v in plan.new] == ["/videos/b.mp4"] and len(plan.unchanged) == 2
    assert {h.path for h in library.search("one two three", None)} == {
        "/videos/c.mp4",
        "/videos/a.mp4",
    }


def test_plan_after_a_file_changes_or_goes(library: Library, tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    files = [folder / f"{name}.mp4" for name in ("a", "b", "c", "d")]
    for file in files:
        file.write_bytes(b"x" * 10)
    for file in files[:3]:
        library.put_video(Video.from_path(file, duration=5.0), notes("hello"))
    files[0].write_bytes(b"x" * 11)  # size changed
    os.utime(files[1], ns=(10**18, 10**18))  # modification time changed
    files[2].unlink()  # removed
    plan = library.plan(Video.from_path(f) for f in (files[0], files[1], files[3]))
    assert [Path(v.path).name for v in plan.changed] == ["a.mp4", "b.mp4"]
    assert [Path(v.path).name for v in plan.new] == ["d.mp4"]
    assert [Path(v.path).name for v in plan.removed] == ["c.mp4"] and not plan.unchanged
    assert library.plan([], within=[str(tmp_path / "elsewhere")]).removed == []
    assert len(library.plan([], within=[str(folder)]).removed) == 3
    # the same file spelled another way is the same video
    assert video_id(str(folder / ".." / "clips" / "a.mp4")) == Video.from_path(files[0]).video_id


def test_search_by_text_by_vector_and_both(library: Library) -> None:
    library.put_video(
        video("/v/yard.mp4"),
        notes("a red forklift near the loading door", "a red forklift in the yard", "blue sky"),
    )
    office = [
        Moment("note", 0, 1, "people at desks", axis(5)),
        Moment("note", 1, 2, "a door opens", axis(6)),
    ]
    library.put_video(video("/v/office.mp4"), office)
    by_text = library.search("forklift", None)
    assert {h.text for h in by_text} == {
        "a red forklift near the loading door",
        "a red forklift in the yard",
    }
    assert all(h.text_rank and h.vector_rank is None for h in by_text)
    by_vector = library.search("", axis(2))
    assert by_vector[0].text == "blue sky" and by_vector[0].vector_rank == 1
    assert by_vector[0].text_rank is None and len(by_vector) == 5
    # "door" matches two notes, the vector (axis 6) one of them: the one matching both wins
    both = library.search("door", axis(6))
    assert both[0].path == "/v/office.mp4" and both[0].text == "a door opens"
    assert both[0].text_rank is not None and both[0].vector_rank == 1
    assert both[0].score > both[1].score
    assert (both[0].start, both[0].end, both[0].kind) == (1.0, 2.0, "note")
    with pytest.raises(LibraryError, match="holds 8"):
        library.search("door", np.ones(4))
    with pytest.raises(LibraryError, match="a text, a vector or both"):
        library.search("  ", None)


def test_filters_are_pushed_down(library: Library) -> None:
    day = 86_400 * 10**9
    library.put_video(Video("/cams/door/1.mp4", 1, 100 * day, 30.0), notes("truck"))
    library.put_video(Video("/cams/yard/2.mp4", 1, 200 * day, 600.0), notes("truck"))
    library.put_video(
        Video("/cams/yard/3.mp4", 1, 300 * day, 90.0),
        [Moment("transcript", 0, 2, "truck", axis(0), thumbnail="/thumbs/3.jpg")],
    )

    def paths(**filters: object) -> list[str]:
        return sorted(h.path for h in library.search("truck", axis(0), **filters))  # type: ignore[arg-type]

    assert paths(path_glob="/cams/yard/*") == ["/cams/yard/2.mp4", "/cams/yard/3.mp4"]
    assert paths(path_glob="*door*") == ["/cams/door/1.mp4"]
    assert paths(min_duration=60) == ["/cams/yard/2.mp4", "/cams/yard/3.mp4"]
    assert paths(max_duration=100) == ["/cams/door/1.mp4", "/cams/yard/3.mp4"]
    assert paths(since=250 * 86_400) == ["/cams/yard/3.mp4"]
    assert paths(kinds=["transcript"]) == ["/cams/yard/3.mp4"]
    hit = library.search("truck", None, kinds=["transcript"])[0]
    assert hit.thumbnail == "/thumbs/3.jpg" and hit.kind == "transcript"
    assert len(library.search("truck", None, limit=1)) == 1
    with pytest.raises(LibraryError, match="no moment kind 'scene'"):
        library.search("truck", None, kinds=["scene"])


def test_hostile_globs_and_texts_do_not_break_the_sql(library: Library) -> None:
    library.put_video(video("/v/it's 50%_off.mp4"), notes("sale"))
    library.put_video(video("/v/its 50xxoff.mp4"), notes("sale"))
    library.put_video(video("/v/back\\slash.mp4"), notes("sale"))
    assert [h.path for h in library.search("sale", None, path_glob="*it's 50%_off*")] == [
        "/v/it's 50%_off.mp4"
    ]
    assert [h.path for h in library.search("sale", None, path_glob="*back\\slash*")] == [
        "/v/back\\slash.mp4"
    ]
    for glob in ("' OR '1'='1", "x') OR (1=1", "*' OR 1=1 --", "%", "_", "\\"):
        assert library.search("sale", axis(0), path_glob=glob) == []
    for text in ("it's", '"sale', "sale' OR '1'='1", "kind:note AND (", "sale) OR (x", "*"):
        library.search(text, axis(0))  # no error, whatever it finds
    assert library.search("sale' --", None)  # the quote is punctuation, "sale" a word
    assert library.plan([video("/v/it's 50%_off.mp4")]).unchanged


def test_a_video_whose_last_step_fails_is_never_half_visible(
    library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = video("/v/first.mp4")
    library.put_video(first, notes("forklift"))
    monkeypatch.setattr(Library, "_mark_done", lambda *args: (_ for _ in ()).throw(OSError("x")))
    with pytest.raises(OSError):
        library.put_video(first, notes("forklift again", "a crane"))  # written, not marked
    assert library.stats()["moments"] == 3  # the new moments are there, committed
    assert library.search("forklift crane", axis(0)) == []  # but neither run is seen
    assert library.plan([first]).changed == [first]
    monkeypatch.undo()
    library.put_video(first, notes("a crane"))
    assert [h.text for h in library.search("forklift crane", None)] == ["a crane"]
    assert library.stats()["moments"] == 1  # the killed run's moments went with it


def test_a_second_put_of_the_same_video_started_meanwhile_wins(library: Library) -> None:
    same = video("/v/same.mp4")

    def first_moments() -> Iterator[Moment]:
        yield Moment("note", 0, 1, "first writer", axis(0))
        assert library.put_video(same, notes("second writer")) == 1  # starts and ends here
        yield Moment("note", 1, 2, "first writer again", axis(1))

    assert library.put_video(same, first_moments()) == 0  # lost to the later start
    assert [h.text for h in library.search("writer", axis(0))] == ["second writer"]
    assert library.stats()["moments"] == 1 and library.plan([same]).unchanged == [same]


CHILD_KILLED = """
import sys, time
from pathlib import Path
import numpy as np
from vidtt.library import Library, Moment, Video
library = Library.open(sys.argv[1], dim=8, embedder="test-embedder")
library.put_video(Video("/v/small.mp4", 1, 1, 10.0), [Moment("note", 0, 1, "forklift", np.ones(8))])

def endless():
    for i in range(10**9):
        if i == 5000:
            Path(sys.argv[2]).touch()
            time.sleep(600)
        yield Moment("frame", i, i + 1, f"forklift {i}", np.ones(8))

library.put_video(Video("/v/big.mp4", 2, 2, 99999.0), endless())
"""


def test_a_kill_mid_put_leaves_the_video_not_done(tmp_path: Path) -> None:
    folder, marker = tmp_path / "lib", tmp_path / "writing"
    child = run_child(CHILD_KILLED, str(folder), str(marker))
    deadline = time.monotonic() + 30
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the writer never got to its big video"
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    library = Library.open(str(folder))  # openable, no repair needed
    assert library.stats()["done"] == 1 and library.stats()["videos"] == 2
    assert {h.path for h in library.search("forklift", np.ones(DIM))} == {"/v/small.mp4"}
    plan = library.plan([Video("/v/small.mp4", 1, 1), Video("/v/big.mp4", 2, 2)])
    assert [v.path for v in plan.changed] == ["/v/big.mp4"]
    library.put_video(Video("/v/big.mp4", 2, 2, 99999.0), notes("forklift big"))
    assert {h.path for h in library.search("forklift", None)} == {"/v/small.mp4", "/v/big.mp4"}


CHILD_WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from vidtt.library import Library, Moment, Video
library = Library.open(sys.argv[1], dim=8, embedder="test-embedder")
while not Path(sys.argv[3]).exists():
    time.sleep(0.01)
for n in range(8):
    moments = [Moment("note", i, i + 1, f"{sys.argv[2]} moment {i}", np.ones(8)) for i in range(50)]
    library.put_video(Video(f"/v/{sys.argv[2]}-{n}.mp4", n, n, 5.0), moments)
library.close()
"""


def test_two_writers_at_once(tmp_path: Path) -> None:
    folder, go = tmp_path / "lib", tmp_path / "go"
    Library.open(str(folder), dim=DIM, embedder="test-embedder")
    writers = [run_child(CHILD_WRITER, str(folder), name, str(go)) for name in ("left", "right")]
    go.touch()
    assert [writer.wait(60) for writer in writers] == [0, 0]
    library = Library.open(str(folder))
    stats = library.stats()
    assert (stats["videos"], stats["done"], stats["moments"]) == (16, 16, 16 * 50)
    for side in ("left", "right"):
        hits = library.search(side, None, limit=100)
        assert len(hits) == 100 and {h.path.split("-")[0] for h in hits} == {f"/v/{side}"}
    given = [Video(f"/v/{side}-{n}.mp4", n, n) for side in ("left", "right") for n in range(8)]
    assert len(library.plan(given).unchanged) == 16


def test_another_embedder_or_size_is_refused_in_one_line(tmp_path: Path) -> None:
    where = str(tmp_path / "lib")
    Library.open(where, dim=DIM, embedder="test-embedder")
    for dim, embedder in ((16, "test-embedder"), (DIM, "clip")):
        with pytest.raises(LibraryMismatchError) as caught:
            Library.open(where, dim=dim, embedder=embedder)
        message = str(caught.value)
        assert "\n" not in message and "new library" in message and "8-value" in message
    assert Library.open(where).dim == DIM and Library.open(where).embedder == "test-embedder"
    with pytest.raises(LibraryError, match="no video library"):
        Library.open(str(tmp_path / "nothing"), create=False)
    with pytest.raises(LibraryError, match="no video library"):
        Library.open(str(tmp_path / "nothing"))  # no dimension: cannot make it
    assert not (tmp_path / "nothing").exists()


def test_names_paths_and_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDTT_LIBRARY_DIR", str(tmp_path / "libs"))
    assert locate("talks.v2").folder == tmp_path / "libs" / "talks.v2"
    assert locate("./talks").folder == Path.cwd() / "talks"
    assert locate("s3://bucket/lib/").uri == "s3://bucket/lib" and not locate("s3://b/l").local
    for bad in ("a b", ".hidden", "", "x;y"):
        with pytest.raises(LibraryError):
            locate(bad)
    assert locate("..").folder == Path.cwd().parent  # a folder, never a name
    Library.open("talks", dim=4, embedder="e")
    assert (tmp_path / "libs" / "talks" / "moments.lance").is_dir()
