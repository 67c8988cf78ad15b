"""The on-disk cache (`vidtt.media.store`): whole values back, least recently used entries
evicted first, corrupt files read as missing, concurrent writers in several processes, the frame
cache's second level, `vidtt cache`, and `vidtt run` decoding a dataset once across processes."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from commands import console, in_process
from tiny_models import job_config

import vidtt
from vidtt.errors import OptionsError
from vidtt.media import store as store_module
from vidtt.media.frame_cache import FrameCache
from vidtt.media.sample import sample_video
from vidtt.media.store import (
    DEFAULT_MAX_BYTES,
    Store,
    cache_dir,
    content_key,
    default_store,
    max_bytes_setting,
    parse_size,
)
from vidtt.types import Clip, VideoInfo
from vidtt.types.shots import Shot

pytestmark = pytest.mark.usefixtures("cache_folder")  # each test its own cache (conftest)


def a_clip(frames: int = 3, seed: int = 0) -> Clip:
    rng = np.random.default_rng(seed)
    clip = Clip(
        array=rng.integers(0, 256, (frames, 12, 16, 3), dtype=np.uint8),
        indices=[i * 5 for i in range(frames)],
        timestamps=[i * 0.2 for i in range(frames)],
        info=VideoInfo(duration=2.5, fps=24.0, frame_count=60, width=16, height=12, codec="h264"),
        sampler="scene",
        source="clips/a.mp4",
        warnings=["a warning"],
        metadata={"decoded": frames, "nested": {"a": [1, 2]}},
    )
    clip.shots = [
        Shot(start=0, end=0.3, first_frame=0, end_frame=8, frames=[0, 1]),
        Shot(start=0.3, end=2.5, first_frame=8, end_frame=60, frames=[2], boundary="cut"),
    ]
    return clip


def assert_same_clip(got: Clip | None, want: Clip) -> None:
    assert got is not None
    assert got.array.dtype == np.uint8 and np.array_equal(got.array, want.array)
    assert got.indices == want.indices and got.timestamps == want.timestamps
    assert got.info == want.info and got.shots == want.shots
    assert (got.sampler, got.source, got.warnings) == (want.sampler, want.source, want.warnings)
    assert got.metadata == want.metadata


def entries(folder: Path, kind: str) -> list[Path]:
    return sorted((folder / kind).glob("*.*")) if (folder / kind).exists() else []


# -- the basics ---------------------------------------------------------------------------------
def test_json_round_trips_and_missing_keys_read_as_none(cache_folder: Path) -> None:
    store = Store()
    assert store.root == cache_folder
    assert store.get_json("notes", "k1") is None
    value = {"segments": [{"start": 0.0, "end": 4.5, "notes": "a red square"}], "n": 3}
    store.put_json("notes", "k1", value)
    store.put_json("notes", "k2", [1, "two", None])
    assert store.get_json("notes", "k1") == value
    assert store.get_json("notes", "k2") == [1, "two", None]
    store.put_json("notes", "k2", "replaced")
    assert store.get_json("notes", "k2") == "replaced"
    assert store.usage()["notes"][0] == 2
    assert not [p for p in (cache_folder / "notes").iterdir() if p.name.startswith(".")]


def test_clips_round_trip_with_their_shots_and_notes() -> None:
    store = Store()
    clip = a_clip()
    store.put_clip("c1", clip)
    assert_same_clip(store.get_clip("c1"), clip)
    assert store.get_clip("c2") is None
    (entry,) = entries(store.root, "frames")
    assert entry.suffix == ".npz"
    np.load(entry, allow_pickle=False)  # no pickled object inside


def test_a_sampled_clip_round_trips(videos: dict[str, Path]) -> None:
    clip = vidtt.sample(str(videos["h264"]), "scene", max_frames=4)
    store = Store()
    store.put_clip("scene", clip)
    assert_same_clip(store.get_clip("scene"), clip)


def test_keys_and_kinds_are_plain_names() -> None:
    store = Store()
    for kind, key in (("../up", "k"), ("notes", "a/b"), ("notes", ""), ("", "k")):
        with pytest.raises(OptionsError, match="letters, digits"):
            store.put_json(kind, key, 1)
    with pytest.raises(OptionsError):
        store.get_json("notes", "../../etc/passwd")


def test_a_clip_whose_metadata_is_not_json_is_not_stored() -> None:
    clip = a_clip()
    clip.metadata["object"] = object()
    with pytest.raises(ValueError, match="cannot be stored"):
        Store().put_clip("c", clip)
    assert Store().usage() == {}


def test_content_keys_are_stable_and_follow_every_part() -> None:
    key = content_key("notes", {"b": 1, "a": [1, 2]}, ("x", 3))
    assert key == content_key("notes", {"a": [1, 2], "b": 1}, ["x", 3])
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != content_key("notes", {"a": [1, 2], "b": 2}, ["x", 3])
    assert content_key("a", "b") != content_key("ab")
    # the same in another process (no hash randomisation)
    code = "from vidtt.media.store import content_key; print(content_key('notes', {'b': 1}))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert other.stdout.strip() == content_key("notes", {"b": 1})


def test_the_folder_and_the_limit_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("VIDTT_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "vidtt"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "vidtt"

    assert max_bytes_setting() == DEFAULT_MAX_BYTES == 2 << 30
    for text, size in [("1024", 1024), ("2G", 2 << 30), ("500M", 500 << 20), ("64k", 65536)]:
        monkeypatch.setenv("VIDTT_CACHE_MAX_BYTES", text)
        assert max_bytes_setting() == size
    assert parse_size("1.5GiB") == 3 << 29 and parse_size(" 10 MB ") == 10 << 20
    for bad in ("lots", "-1", "2X", ""):
        with pytest.raises(OptionsError, match="VIDTT_CACHE_MAX_BYTES"):
            parse_size(bad)

    monkeypatch.setenv("VIDTT_CACHE_DIR", str(tmp_path / "one"))
    monkeypatch.setenv("VIDTT_CACHE_MAX_BYTES", "1M")
    first = default_store()
    assert default_store() is first
    assert (first.root, first.max_bytes) == (tmp_path / "one", 1 << 20)
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(tmp_path / "two"))
    assert default_store().root == tmp_path / "two"


# -- the limit ----------------------------------------------------------------------------------
def test_least_recently_used_entries_are_evicted_first() -> None:
    store = Store()
    store.put_json("notes", "probe", "x" * 1000)
    size = (store.root / "notes" / "probe.json").stat().st_size
    store.clear()
    store = Store(max_bytes=3 * size)
    for number, key in enumerate(("a", "b", "c")):
        store.put_json("notes", key, "x" * 1000)
        path = store.root / "notes" / f"{key}.json"
        os.utime(path, (1000 + number, 1000 + number))  # a, then b, then c
    assert store.get_json("notes", "a") is not None  # read: now the most recent
    store.put_json("notes", "d", "x" * 1000)
    assert store.get_json("notes", "b") is None  # the least recently used went first
    assert {k: store.get_json("notes", k) is not None for k in "acd"} == dict.fromkeys("acd", True)
    store.put_clip("big", a_clip(1))  # bigger than an entry: the two oldest make room
    assert sum(size for _, size in store.usage().values()) <= store.max_bytes
    assert store.get_clip("big") is not None


def test_an_entry_larger_than_the_limit_is_not_stored() -> None:
    store = Store(max_bytes=200)
    store.put_json("notes", "small", "x")
    store.put_json("notes", "large", "x" * 500)
    assert store.get_json("notes", "large") is None
    assert store.get_json("notes", "small") == "x"  # and nothing was evicted for it
    store.put_clip("clip", a_clip())
    assert store.get_clip("clip") is None
    assert store.usage()["notes"][0] == 1


def test_the_limit_holds_across_kinds_and_stores_of_one_folder() -> None:
    one, two = Store(max_bytes=40_000), Store(max_bytes=40_000)
    for n in range(12):
        (one if n % 2 else two).put_clip(f"c{n}", a_clip(20, seed=n))  # 11.5 KB a clip
        one.put_json("notes", f"n{n}", "x" * 1000)
    two.evict()
    assert sum(size for _, size in two.usage().values()) <= 40_000
    assert two.get_clip("c11") is not None  # the newest stays


# -- damaged entries ----------------------------------------------------------------------------
def test_corrupt_or_truncated_entries_read_as_missing_and_are_removed() -> None:
    store = Store()
    store.put_json("notes", "j", {"text": "a long enough value " * 20})
    store.put_clip("c", a_clip())
    json_path, clip_path = store.root / "notes" / "j.json", store.root / "frames" / "c.npz"
    for path, read in ((json_path, lambda: store.get_json("notes", "j")),
                       (clip_path, lambda: store.get_clip("c"))):  # fmt: skip
        whole = path.read_bytes()
        for damaged in (whole[: len(whole) // 2], whole[:-1], b"", b"\x00" * len(whole)):
            path.write_bytes(damaged)
            assert read() is None
            assert not path.exists()  # removed
        flipped = bytearray(whole)
        flipped[len(whole) // 2] ^= 0xFF
        path.write_bytes(bytes(flipped))
        assert read() is None
        path.write_bytes(whole)
        assert read() is not None
    json_path.write_text('"a bare value"')  # valid JSON, but not an entry
    assert store.get_json("notes", "j") is None
    store.put_json("notes", "j", {"text": "abc"})
    json_path.write_text(json_path.read_text().replace("abc", "abd"))  # still valid JSON
    assert store.get_json("notes", "j") is None and not json_path.exists()


def test_a_stale_temporary_file_is_ignored_then_tidied() -> None:
    store = Store(max_bytes=10_000)
    store.put_json("notes", "a", "x")
    temp = store.root / "notes" / ".a.json.1.dead.tmp"
    temp.write_text("half")
    assert store.usage() == {"notes": (1, (store.root / "notes" / "a.json").stat().st_size)}
    os.utime(temp, (1, 1))
    store.evict()
    assert not temp.exists()


# -- concurrent writers -------------------------------------------------------------------------
def _write_and_read(root: str, writer: int, rounds: int, limit: int) -> list[str]:
    """Write a shared key and own keys, and read them all back; the problems seen."""
    store = Store(Path(root), max_bytes=limit)
    problems = []
    for n in range(rounds):
        length = 200 + (writer * 37 + n * 101) % 3000
        value = {"writer": writer, "n": n, "data": "x" * length, "length": length}
        store.put_json("notes", "shared", value)
        store.put_json("notes", f"w{writer}-{n % 5}", value)
        store.put_clip("shared", a_clip(2 + n % 3, seed=writer))
        for key in ("shared", *(f"w{w}-{n % 5}" for w in range(4))):
            got = store.get_json("notes", key)
            if got is not None and len(got["data"]) != got["length"]:
                problems.append(f"torn {key}: {got['length']} != {len(got['data'])}")
        clip = store.get_clip("shared")
        if clip is not None and not len(clip) == len(clip.indices) == len(clip.timestamps):
            problems.append("a torn clip")
    return problems


@pytest.mark.parametrize("limit", [DEFAULT_MAX_BYTES, 30_000], ids=["roomy", "evicting"])
def test_concurrent_writers_in_several_processes(cache_folder: Path, limit: int) -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.starmap(
            _write_and_read, [(str(cache_folder), w, 25, limit) for w in range(4)]
        )
    assert results == [[], [], [], []]
    store = Store(cache_folder, max_bytes=limit)
    shared = store.get_json("notes", "shared")
    assert shared is None or len(shared["data"]) == shared["length"]
    if limit == DEFAULT_MAX_BYTES:
        assert store.usage()["notes"][0] == 1 + 4 * 5
        assert store.get_clip("shared") is not None
    else:  # writers trust their own counts for a while: the next write evicts to the limit
        store.put_json("notes", "last", "x")
        assert sum(size for _, size in store.usage().values()) <= limit
    left = [p for p in cache_folder.rglob(".*") if p.is_file()]
    assert left == []  # no temporary file left


# -- the frame cache's second level -------------------------------------------------------------
class Counting:
    """A sampler that counts its decodes."""

    def __init__(self, sampler: str = "uniform") -> None:
        self.inner = vidtt.registry.sampler(sampler)
        self.name = self.inner.name
        self.calls = 0

    def sample(self, source, options):
        self.calls += 1
        return self.inner.sample(source, options)


def test_the_frame_cache_reads_and_writes_the_store(videos: dict[str, Path]) -> None:
    sampler = Counting()
    options = sampler.inner.options(num_frames=3)
    first = sample_video(videos["h264"], sampler, options, cache=FrameCache(store=Store()))
    assert sampler.calls == 1 and len(entries(Store().root, "frames")) == 1

    other = FrameCache(store=Store())  # another process: an empty memory, the same folder
    again = sample_video(videos["h264"], sampler, options, cache=other)
    assert sampler.calls == 1 and other.disk_hits == 1
    assert_same_clip(again, first)
    assert again.metadata["frames_rule"] == "" and again.origin is not None

    sample_video(videos["h264"], sampler, sampler.inner.options(num_frames=4), cache=other)
    sample_video(videos["vp9"], sampler, options, cache=other)
    assert sampler.calls == 3 and len(entries(Store().root, "frames")) == 3

    frames = list(first.array)  # a frame list has no key: never stored
    sample_video(frames, sampler, options, cache=other)
    assert sampler.calls == 4 and len(entries(Store().root, "frames")) == 3


def test_a_frame_cache_without_a_store_writes_nothing(
    videos: dict[str, Path], cache_folder: Path
) -> None:
    sampler = Counting()
    options = sampler.inner.options(num_frames=3)
    cache = FrameCache()
    assert cache.store is None
    for _ in range(2):
        sample_video(videos["h264"], sampler, options, cache=cache)
    assert sampler.calls == 1 and (cache.misses, cache.hits) == (1, 1)
    sample_video(videos["h264"], sampler, options, cache=FrameCache(0))
    assert sampler.calls == 2 and not cache_folder.exists()


def test_a_store_that_cannot_be_written_warns_once_and_samples(
    videos: dict[str, Path], tmp_path: Path
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    sampler = Counting()
    cache = FrameCache(store=Store(blocked / "cache"))
    with pytest.warns(UserWarning, match="frames not kept in the cache"):
        clip = sample_video(
            videos["h264"], sampler, sampler.inner.options(num_frames=2), cache=cache
        )
    assert len(clip) == 2


def test_the_module_keeps_one_store_per_folder() -> None:
    assert store_module.default_store() is store_module.default_store()


# -- vidtt cache --------------------------------------------------------------------------------
def vidtt_cache(*args: str, folder: Path, through=in_process) -> subprocess.CompletedProcess:
    """`vidtt cache ARGS` in this process (or `through=console`), its cache in `folder`."""
    return through("cache", *args, env={"VIDTT_CACHE_DIR": str(folder)})


def test_the_cache_command_shows_and_clears(cache_folder: Path, tmp_path: Path) -> None:
    store = Store(cache_folder)
    store.put_json("notes", "a", "x")
    store.put_json("notes", "b", "y")
    store.put_clip("c", a_clip())
    info = vidtt_cache(folder=cache_folder, through=console)
    assert info.returncode == 0, info.stderr
    assert f"cache folder: {cache_folder}" in info.stdout
    assert "frames" in info.stdout and "notes" in info.stdout and "2.0 GiB" in info.stdout
    assert vidtt_cache("info", folder=cache_folder).stdout == info.stdout

    report = json.loads(vidtt_cache("--json", folder=cache_folder).stdout)
    usage = store.usage()
    assert report["folder"] == str(cache_folder) and report["max_bytes"] == 2 << 30
    assert report["kinds"]["notes"] == {"entries": 2, "bytes": usage["notes"][1]}
    assert report["kinds"]["frames"]["entries"] == 1
    assert (report["entries"], report["bytes"]) == (3, sum(b for _, b in usage.values()))

    cleared = vidtt_cache("clear", "--kind", "notes", folder=cache_folder)
    assert cleared.returncode == 0 and "removed 2 entries of kind notes" in cleared.stdout
    assert store.usage().keys() == {"frames"}
    other = tmp_path / "other"
    Store(other).put_json("notes", "z", 1)
    done = json.loads(
        vidtt_cache("clear", "--json", "--dir", str(other), folder=cache_folder).stdout
    )
    assert done == {"folder": str(other), "kind": None, "removed": 1}
    assert store.usage().keys() == {"frames"}  # --dir: the other folder only
    everything = vidtt_cache("clear", folder=cache_folder)
    assert "removed 1 entry from" in everything.stdout and store.usage() == {}

    empty = json.loads(
        vidtt_cache("--json", "--dir", str(tmp_path / "new"), folder=cache_folder).stdout
    )
    assert empty["entries"] == 0 and not (tmp_path / "new").exists()  # looked at, not made


def test_the_cache_command_errors_in_one_line(cache_folder: Path, tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = {
        ("clear", "--kind", "nope"): "unknown cache kind 'nope': the kinds are frames, notes",
        ("--dir", str(afile)): f"the cache folder {afile} is not a folder",
        ("--dir", str(afile / "sub")): f"cannot make the cache folder {afile / 'sub'}",
    }
    for args, message in cases.items():
        got = vidtt_cache(*args, folder=cache_folder)
        assert got.returncode == 2, (args, got.stdout)
        assert got.stderr.count("\n") == 1 and message in got.stderr, got.stderr
    bad = console(
        "cache", env={"VIDTT_CACHE_DIR": str(cache_folder), "VIDTT_CACHE_MAX_BYTES": "lots"}
    )
    assert bad.returncode == 2 and "VIDTT_CACHE_MAX_BYTES must be bytes" in bad.stderr
    wrong = vidtt_cache("purge", folder=cache_folder)
    assert wrong.returncode == 2 and "invalid choice: 'purge'" in wrong.stderr


# -- vidtt run: a dataset asked twice is decoded once -------------------------------------------
def vidtt_run(
    config: Path, requests: Path, output: Path, folder: Path, *extra: str, through=console
):
    """`vidtt run` through the console script (or `through=in_process`), its cache in `folder`."""
    command = ["run", str(config), "--input", str(requests), "--output", str(output), *extra]
    return through(*command, env={"VIDTT_CACHE_DIR": str(folder)})


def records(path: Path) -> dict:
    return {r["id"]: r for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.slow
def test_a_second_run_over_the_same_videos_decodes_nothing(
    llava_dir: Path, videos: dict[str, Path], tmp_path: Path, cache_folder: Path
) -> None:
    config = tmp_path / "pipe.json"
    config.write_text(json.dumps(job_config(llava_dir)))
    lines = [
        {"id": f"{name}-{q}", "videos": [str(videos[name])], "question": question}
        for name in ("h264", "vp9")
        for q, question in enumerate(("What is happening?", "Describe it."))
    ]
    requests = tmp_path / "in.jsonl"
    requests.write_text("".join(json.dumps(line) + "\n" for line in lines))

    first = vidtt_run(config, requests, tmp_path / "one.jsonl", cache_folder, "--quiet")
    assert first.returncode == 0, first.stderr
    store = Store(cache_folder)
    stored = entries(cache_folder, "frames")
    assert len(stored) == 2  # one per video and sampling

    # Mark what the store holds: a run that decodes would not see the mark.
    marked = {}
    for path in stored:
        clip = store.get_clip(path.stem)
        assert clip is not None
        marked[clip.source] = [t + 100.0 for t in clip.timestamps]
        clip.timestamps = marked[clip.source]
        store.put_clip(path.stem, clip)
    before = {p.name: p.stat().st_size for p in entries(cache_folder, "frames")}

    second = vidtt_run(
        config, requests, tmp_path / "two.jsonl", cache_folder, "--quiet", through=in_process
    )
    assert second.returncode == 0, second.stderr
    assert {p.name: p.stat().st_size for p in entries(cache_folder, "frames")} == before
    one, two = records(tmp_path / "one.jsonl"), records(tmp_path / "two.jsonl")
    for id_, record in two.items():
        assert record["token_ids"] == one[id_]["token_ids"]  # the same frames, the same answers
        assert record["videos"][0]["timestamps"] == marked[record["videos"][0]["source"]]

    fresh = vidtt_run(
        config,
        requests,
        tmp_path / "three.jsonl",
        cache_folder,
        "--no-cache",
        "--quiet",
        through=in_process,
    )
    assert fresh.returncode == 0, fresh.stderr
    for id_, record in records(tmp_path / "three.jsonl").items():
        assert record["videos"][0]["timestamps"] == one[id_]["videos"][0]["timestamps"]
