"""The on-disk cache against a hostile or broken cache folder (docs/security.md, The on-disk
cache): nothing inside the folder is followed out of it (so `vidtt cache clear` and eviction
delete only the folder's own entries), an entry that is not a regular file (a link to a file, a
folder or /dev/zero, a FIFO, a socket, a folder) reads as missing at once and is removed, every
read is bounded, a deeply nested or oversized entry is a miss, and a folder that cannot be used
(not a folder, no permission, a full disk) turns the cache off with one warning."""

from __future__ import annotations

import errno
import io
import json
import os
import socket
import stat
import threading
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from commands import console, in_process

from vidtt.media import store as store_module
from vidtt.media.frame_cache import FrameCache
from vidtt.media.sample import sample_video
from vidtt.media.store import CacheWarning, Store
from vidtt.types import Clip, VideoInfo

pytestmark = pytest.mark.usefixtures("cache_folder")  # each test its own cache (conftest)


def a_clip(frames: int = 2) -> Clip:
    return Clip(
        array=np.full((frames, 8, 8, 3), 7, dtype=np.uint8),
        indices=list(range(frames)),
        timestamps=[i * 0.5 for i in range(frames)],
        info=VideoInfo(duration=2.0, fps=2.0, frame_count=4, width=8, height=8, codec="h264"),
        sampler="uniform",
        source="a.mp4",
    )


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """`call()`'s result; fails (rather than hanging the run) when it takes longer."""
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    assert result, "the call raised"
    return result[0]


def outside_tree(tmp_path: Path) -> tuple[Path, dict[Path, bytes]]:
    """A folder outside the cache holding what looks like cache entries (and a real one)."""
    outside = tmp_path / "precious"
    Store(outside).put_json("notes", "k", {"mine": True})
    (outside / "frames").mkdir()
    (outside / "frames" / "c.npz").write_bytes(b"not a cache file")
    (outside / "thesis.json").write_text('{"chapter": 1}')
    files = {p: p.read_bytes() for p in outside.rglob("*") if p.is_file()}
    return outside, files


def still_there(files: dict[Path, bytes]) -> None:
    for path, data in files.items():
        assert path.read_bytes() == data, f"{path} was changed or removed"


# -- links out of the folder: clear and eviction ------------------------------------------------
def linked_cache(cache_folder: Path, outside: Path) -> None:
    """Kind folders that are links to folders outside, and entries that are links."""
    cache_folder.mkdir()
    (cache_folder / "notes").symlink_to(outside / "notes", target_is_directory=True)
    (cache_folder / "other").symlink_to(outside, target_is_directory=True)
    (cache_folder / "frames").mkdir()
    (cache_folder / "frames" / "c.npz").symlink_to(outside / "frames" / "c.npz")
    (cache_folder / "frames" / "d.json").symlink_to(outside / "thesis.json")
    (cache_folder / "frames" / "e.json").symlink_to(outside, target_is_directory=True)
    Store(cache_folder).put_clip("real", a_clip())


def test_cache_clear_deletes_nothing_outside_the_folder(cache_folder: Path, tmp_path: Path) -> None:
    outside, files = outside_tree(tmp_path)
    linked_cache(cache_folder, outside)
    env = {"VIDTT_CACHE_DIR": str(cache_folder)}
    info = console("cache", "--json", env=env, timeout=60)
    assert info.returncode == 0, info.stderr
    assert json.loads(info.stdout)["entries"] == 1  # the real clip; links are not entries
    other = console("cache", "clear", "--kind", "other", env=env, timeout=60)
    assert other.returncode == 2 and "unknown cache kind 'other'" in other.stderr  # a link
    for args in (("clear", "--kind", "notes"), ("clear",)):
        done = console("cache", *args, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        still_there(files)
    assert sorted(os.listdir(cache_folder / "frames")) == []  # the links went, not their targets
    assert (cache_folder / "notes").is_symlink()  # a linked kind folder is left alone


def test_eviction_deletes_nothing_outside_the_folder(cache_folder: Path, tmp_path: Path) -> None:
    outside, files = outside_tree(tmp_path)
    linked_cache(cache_folder, outside)
    Store(cache_folder, max_bytes=1).evict()
    still_there(files)
    with pytest.warns(CacheWarning, match="notes not kept in the cache"):
        Store(cache_folder).put_json("notes", "new", "x")  # never through the link
    still_there(files)
    assert not (outside / "notes" / "new.json").exists()
    assert Store(cache_folder).usage() == {}


def test_reads_never_follow_a_linked_kind_folder(cache_folder: Path, tmp_path: Path) -> None:
    outside, files = outside_tree(tmp_path)
    linked_cache(cache_folder, outside)
    store = Store(cache_folder)
    with pytest.warns(CacheWarning, match="symbolic link"):
        assert store.get_json("notes", "k") is None
    assert Store(outside).get_json("notes", "k") == {"mine": True}
    still_there(files)


# -- entries that are not regular files ---------------------------------------------------------
def make_link_to_file(path: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    Store(target).put_json("notes", "k", "a value kept elsewhere")
    Store(target).put_clip("k", a_clip())
    path.symlink_to(target / ("notes/k.json" if path.suffix == ".json" else "frames/k.npz"))


def make_socket(path: Path, tmp_path: Path) -> None:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()


MAKERS: dict[str, Callable[[Path, Path], None]] = {
    "link to a file": make_link_to_file,
    "link to a folder": lambda path, tmp: path.symlink_to(tmp, target_is_directory=True),
    "link to /dev/zero": lambda path, tmp: path.symlink_to("/dev/zero"),
    "link to a FIFO": lambda path, tmp: (os.mkfifo(tmp / "fifo"), path.symlink_to(tmp / "fifo")),
    "dangling link": lambda path, tmp: path.symlink_to(tmp / "nothing"),
    "FIFO": lambda path, tmp: os.mkfifo(path),
    "socket": make_socket,
    "folder": lambda path, tmp: path.mkdir(),
}


@pytest.mark.parametrize("kind", list(MAKERS))
@pytest.mark.parametrize("entry", ["json", "npz"])
def test_an_entry_that_is_not_a_regular_file_is_a_miss_and_is_removed(
    cache_folder: Path, tmp_path: Path, kind: str, entry: str
) -> None:
    store = Store(cache_folder)
    store.put_json("notes", "other", 1)
    store.put_clip("other", a_clip())
    folder = cache_folder / ("notes" if entry == "json" else "frames")
    path = folder / f"k.{entry}"
    MAKERS[kind](path, tmp_path)
    outside = {
        p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and folder not in p.parents
    }
    read = (
        (lambda: store.get_json("notes", "k")) if entry == "json" else lambda: store.get_clip("k")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        assert within(5, read) is None
        if kind != "folder":  # a folder is left (it cannot be unlinked); anything else goes
            assert not os.path.lexists(path)
        assert {kind: n for kind, (n, _) in within(5, store.usage).items()} == {
            "frames": 1,
            "notes": 1,
        }
        store.put_json("notes", "k", "new") if entry == "json" else store.put_clip("k", a_clip(1))
    still_there(outside)
    if kind != "folder":
        got = within(5, read)
        assert got == "new" if entry == "json" else len(got) == 1


@pytest.mark.parametrize("kind", list(MAKERS))
def test_cache_clear_removes_odd_entries_without_reading_them(
    cache_folder: Path, tmp_path: Path, kind: str
) -> None:
    Store(cache_folder).put_json("notes", "real", 1)
    MAKERS[kind](cache_folder / "notes" / "k.json", tmp_path)
    MAKERS[kind](cache_folder / "notes" / "k2.npz", tmp_path) if kind != "link to a FIFO" else None
    outside = {
        p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "cache" not in p.parts
    }
    env = {"VIDTT_CACHE_DIR": str(cache_folder)}
    info = console("cache", "--json", env=env, timeout=60)
    assert info.returncode == 0 and json.loads(info.stdout)["kinds"]["notes"]["entries"] == 1
    done = console("cache", "clear", env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    left = sorted(os.listdir(cache_folder / "notes"))
    assert left == (["k.json", "k2.npz"] if kind == "folder" else []), left
    still_there(outside)


# -- every read bounded -------------------------------------------------------------------------
def test_an_entry_larger_than_the_limit_is_never_read(cache_folder: Path) -> None:
    Store(cache_folder).put_json("notes", "big", "x" * 10_000)
    small = Store(cache_folder, max_bytes=1_000)
    assert small.get_json("notes", "big") is None


def npz(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    header = {"descr": "|u1", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def test_a_clip_entry_claiming_a_huge_array_is_a_miss(cache_folder: Path) -> None:
    store = Store(cache_folder)
    store.put_clip("c", a_clip())
    path = cache_folder / "frames" / "c.npz"
    good = zipfile.ZipFile(path)
    notes = good.read("notes.npy")
    huge = npy_header((1 << 40,)) + b"x" * 64
    squeezed = io.BytesIO()  # 4 MB of frames in a few KB
    np.savez_compressed(squeezed, frames=np.zeros((4096, 1024), np.uint8), notes=np.zeros(2))
    crafted = {
        "claims a terabyte": npz(**{"frames.npy": huge, "notes.npy": notes}),
        "compressed": squeezed.getvalue(),
    }
    for name, data in crafted.items():
        path.write_bytes(data)
        assert within(10, lambda: store.get_clip("c")) is None, name
        assert not path.exists(), name


# -- deeply nested entries ----------------------------------------------------------------------
def test_a_deeply_nested_entry_is_a_miss_with_a_warning(cache_folder: Path) -> None:
    store = Store(cache_folder)
    store.put_json("notes", "deep", 1)
    path = cache_folder / "notes" / "deep.json"
    deep = "[" * 200_000 + "]" * 200_000
    path.write_text(f'{{"format": 1, "sha256": "x", "value": {deep}}}')
    with pytest.warns(CacheWarning, match="deep.json"):
        assert store.get_json("notes", "deep") is None
    assert not path.exists()
    store.put_clip("deep", a_clip())
    clip_path = cache_folder / "frames" / "deep.npz"
    frames = zipfile.ZipFile(clip_path).read("frames.npy")
    text = ("[" * 200_000 + "]" * 200_000).encode()
    notes = npy_header((len(text),)) + text
    clip_path.write_bytes(npz(**{"frames.npy": frames, "notes.npy": notes}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        assert store.get_clip("deep") is None
    assert not clip_path.exists()


# -- a folder that cannot be used ---------------------------------------------------------------
def a_file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


UNUSABLE: dict[str, Callable[[Path], Path]] = {
    "a file": lambda tmp: a_file(tmp / "afile"),
    "under a file": lambda tmp: a_file(tmp / "afile") / "cache",
    "a link to /dev/null": lambda tmp: (tmp / "null").symlink_to("/dev/null") or tmp / "null",
    "a FIFO": lambda tmp: os.mkfifo(tmp / "fifo") or tmp / "fifo",
}


def uses_without_raising(store: Store) -> None:
    """Every read and write a command makes: misses and no-ops, no exception, no hang."""
    for n in range(3):
        store.put_json("notes", f"k{n}", {"n": n})
        assert store.get_json("notes", f"k{n}") is None
        store.put_clip(f"c{n}", a_clip())
        assert store.get_clip(f"c{n}") is None


@pytest.mark.parametrize("how", list(UNUSABLE))
def test_an_unusable_folder_is_a_miss_with_one_warning(tmp_path: Path, how: str) -> None:
    store = Store(UNUSABLE[how](tmp_path))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        within(10, lambda: uses_without_raising(store))
    messages = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and str(store.root) in messages[0], messages
    assert "\n" not in messages[0] and "without it" in messages[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes any folder")
def test_a_read_only_folder_is_read_and_never_written(cache_folder: Path) -> None:
    Store(cache_folder).put_json("notes", "k", "kept")
    (cache_folder / "notes").chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        store = Store(cache_folder)
        with pytest.warns(CacheWarning, match="not kept in the cache"):
            store.put_json("notes", "new", 1)
            store.put_json("notes", "new2", 1)
        assert store.get_json("notes", "k") == "kept"
        cache_folder.chmod(0)
        assert Store(cache_folder).get_json("notes", "k") is None
    finally:
        cache_folder.chmod(0o755)
        (cache_folder / "notes").chmod(0o755)


def test_a_full_disk_is_a_no_op_with_one_warning(
    cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store_module, "_write_all", full)
    store = Store(cache_folder)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        uses_without_raising(store)
    messages = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "No space left on device" in messages[0], messages
    assert [p.name for p in cache_folder.rglob("*") if p.is_file()] == []  # no temporary file


def test_the_frame_cache_samples_without_a_usable_store(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    store = Store(a_file(tmp_path / "afile"))
    cache = FrameCache(store=store)
    from vidtt import registry

    sampler = registry.sampler("uniform")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for frames in (2, 3):
            clip = sample_video(
                videos["h264"], sampler, sampler.options(num_frames=frames), cache=cache
            )
            assert len(clip) == frames
    assert len([w for w in seen if "cache" in str(w.message)]) == 1


# -- the commands -------------------------------------------------------------------------------
def test_cache_commands_on_an_unusable_folder_are_one_line_errors(tmp_path: Path) -> None:
    folder = a_file(tmp_path / "afile")
    for args in ((), ("clear",), ("--json",)):
        got = console("cache", *args, env={"VIDTT_CACHE_DIR": str(folder)}, timeout=60)
        assert got.returncode == 2 and got.stderr.count("\n") == 1, got.stderr
        assert f"the cache folder {folder} is not a folder" in got.stderr


def test_ask_long_works_without_a_usable_cache(llava_dir: Path, tmp_path: Path) -> None:
    from vidtt.testing import make_video

    video = make_video(tmp_path / "six.mp4", frames=36, fps=6)
    folder = a_file(tmp_path / "afile")
    asked = in_process(
        "ask",
        str(video),
        "-q",
        "What?",
        "--long",
        "--json",
        "--model",
        str(llava_dir),
        "--backend",
        "cpu",
        "--dtype",
        "float32",
        "--max-new-tokens",
        "3",
        "--segment-option",
        "min_segment=2",
        "--segment-option",
        "shots=false",
        env={"VIDTT_CACHE_DIR": str(folder), "HF_HUB_OFFLINE": "1"},
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["strategy"] == "segments"
    warned = [line for line in asked.stderr.splitlines() if "cache" in line]
    assert len(warned) == 1 and warned[0].startswith("vidtt: warning: "), asked.stderr
    assert "not kept in the cache" in warned[0] and str(folder) in warned[0]


def test_a_folder_that_refuses_writes_is_still_read(
    cache_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only cache as root sees it (root may write anywhere: the refusal is simulated)."""
    Store(cache_folder).put_json("notes", "k", "kept")

    def refused(folder: int, name: str, data: bytes) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(cache_folder))

    monkeypatch.setattr(store_module, "_write_in", refused)
    store = Store(cache_folder)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        uses_without_raising(store)
        assert store.get_json("notes", "k") == "kept"
    messages = [str(w.message) for w in seen if issubclass(w.category, CacheWarning)]
    assert len(messages) == 1 and "Permission denied" in messages[0], messages
