"""Runs of frames from different keyframes decoded by several decoders at once: the same exact
frames from every kind of source, one decoder where sharing cannot help, and a failure in any
decoder stopping them all."""

from __future__ import annotations

import io
import threading
from pathlib import Path
from typing import Any

import pytest
from exact import assert_exact, full_decode

import vidtt
from vidtt import DecodeError
from vidtt.media.decode import decoder as decode
from vidtt.media.decode.decoder import share

GOP = {"gop": 10, "bframes": 2}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from vidtt.testing import make_video

    root = tmp_path_factory.mktemp("shared")
    return {
        "mp4": make_video(root / "a.mp4", frames=60, **GOP),
        "mkv": make_video(root / "a.mkv", frames=60, **GOP),
        "webm": make_video(root / "a.webm", frames=60, gop=10),
        "one keyframe": make_video(root / "one.mp4", frames=60, gop=1000),
        "ts": make_video(root / "a.ts", frames=60, **GOP),
    }


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> Any:
    def set_cores(count: int) -> None:
        monkeypatch.setattr(decode, "usable_cores", lambda: count)

    return set_cores


KEYFRAMES = list(range(0, 100, 10))


def test_shares_are_consecutive_and_of_about_equal_work() -> None:
    groups = [[k * 10 + 5] for k in range(10)]  # ten runs of 6 frames' work each
    shares = share(groups, KEYFRAMES, 2)
    assert [g for s in shares for g in s] == groups
    assert [len(s) for s in shares] == [5, 5]
    assert [len(s) for s in share(groups, KEYFRAMES, 3)] == [3, 4, 3]
    assert share(groups, KEYFRAMES, 1) == [groups]
    uneven = [[9], [19], [20]]  # 10 + 10 + 1 frames of work
    assert share(uneven, KEYFRAMES, 2) == [[[9]], [[19], [20]]]


def test_little_work_stays_with_one_decoder() -> None:
    assert share([[0], [10], [20]], KEYFRAMES, 2) == [[[0], [10], [20]]]  # three keyframes alone


@pytest.mark.parametrize("name", ["mp4", "mkv", "webm"])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_any_number_of_decoders_gives_the_exact_frames(
    videos: dict[str, Path], name: str, count: int, cores: Any
) -> None:
    cores(count)
    path = videos[name]
    reference = full_decode(path)
    for sampler, options in [
        ("uniform", {"num_frames": 12}),
        ("uniform", {"num_frames": 7, "max_side": 40}),
        ("keyframe", {"max_frames": 6}),
        ("interval", {"fps": 4}),
    ]:
        clip = vidtt.sample(path, sampler, **options)
        assert_exact(clip, path, reference)
        assert clip.metadata["access"] == "seek by pts"
        assert clip.metadata["decoders"] == (count if sampler != "keyframe" else 1)
    assert vidtt.sample(path, num_frames=12).metadata["decoded_frames"] >= 12


@pytest.mark.parametrize("count", [1, 2])
def test_forward_streams_share_runs_from_their_entry_points(
    videos: dict[str, Path], count: int, cores: Any
) -> None:
    cores(count)
    path = videos["ts"]
    reference = full_decode(path)
    for options in [{"num_frames": 12}, {"num_frames": 4, "start": 0.5, "max_side": 40}]:
        clip = vidtt.sample(path, **options)
        assert clip.metadata["access"] == "forward by pts"
        assert clip.metadata["decoders"] == count
        assert_exact(clip, path, reference)


def test_every_seekable_source_shares_the_work(videos: dict[str, Path], cores: Any) -> None:
    cores(2)
    path = videos["mp4"]
    expected = vidtt.sample(path, num_frames=12)
    assert expected.metadata["decoders"] == 2
    data = path.read_bytes()
    with open(path, "rb") as file:
        file.seek(0)
        sources = [str(path), data, io.BytesIO(data), file]
        for source in sources:
            clip = vidtt.sample(source, num_frames=12)
            assert clip.metadata["decoders"] == 2, source
            assert (clip.array == expected.array).all()
            assert clip.indices == expected.indices


class _Stream(io.RawIOBase):
    """A pipe-like file object: readable, not seekable."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self.data[self.at : self.at + len(buffer)]
        buffer[: len(chunk)] = chunk
        self.at += len(chunk)
        return len(chunk)


def test_unseekable_files_and_single_runs_use_one_decoder(
    videos: dict[str, Path], cores: Any
) -> None:
    cores(2)
    one = vidtt.sample(videos["one keyframe"], num_frames=12)
    assert one.metadata["decoders"] == 1  # one run from one keyframe: nothing to share
    assert_exact(one, videos["one keyframe"])
    try:
        piped = vidtt.sample(_Stream(videos["mp4"].read_bytes()), num_frames=12)
    except DecodeError as error:  # an unseekable file may be refused, but clearly
        assert "could not be decoded" not in str(error), error
    else:
        assert piped.metadata["decoders"] == 1
        assert_exact(piped, videos["mp4"])


def _decoder_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("vidtt-decode")]


def test_a_failing_decoder_stops_the_others(
    videos: dict[str, Path], cores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores(2)
    put = decode.Converter.put
    calls: list[str] = []

    def failing_put(self: Any, row: int, frame: Any) -> int:
        calls.append(threading.current_thread().name)
        if threading.current_thread().name.startswith("vidtt-decode"):
            raise RuntimeError("disk pulled out")
        return put(self, row, frame)

    monkeypatch.setattr(decode.Converter, "put", failing_put)
    with pytest.raises(DecodeError, match="disk pulled out"):
        vidtt.sample(videos["mp4"], num_frames=30)
    assert _decoder_threads() == []
    assert len(calls) < 30  # the first decoder stopped before decoding all its frames


def test_a_missed_seek_in_any_decoder_falls_back_to_a_forward_decode(
    videos: dict[str, Path], cores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    cores(2)

    def missed(*args: Any) -> Any:
        raise decode.SeekMissed("a seek landed after its keyframe")

    monkeypatch.setattr(decode, "_decode_share", missed)
    clip = vidtt.sample(videos["mkv"], num_frames=12)
    assert clip.metadata["access"] == "forward by pts"
    assert_exact(clip, videos["mkv"])
    assert _decoder_threads() == []


def test_file_views_keep_their_own_positions() -> None:
    from vidtt.media.containers import FileView

    data = bytes(range(256)) * 4
    file, lock = io.BytesIO(b"header" + data), threading.Lock()
    one, two = FileView(file, lock, 6), FileView(file, lock, 6)
    assert one.read(10) == data[:10]
    assert two.seek(-6, io.SEEK_END) == len(data) - 6 and two.read() == data[-6:]
    assert one.read(5) == data[10:15] and one.tell() == 15
    assert one.seek(5, io.SEEK_CUR) == 20 and one.read(2) == data[20:22]
    with pytest.raises(OSError):
        one.seek(-1)


def test_a_file_object_positioned_past_a_header_is_sampled_from_there(
    videos: dict[str, Path], cores: Any
) -> None:
    cores(2)
    expected = vidtt.sample(videos["mp4"], num_frames=12)
    file = io.BytesIO(b"not video" + videos["mp4"].read_bytes())
    file.seek(9)
    clip = vidtt.sample(file, num_frames=12)
    assert clip.metadata["decoders"] == 2 and (clip.array == expected.array).all()


def test_many_cores_share_big_frames_between_few_decoders() -> None:
    from vidtt.media.decode.decoder import memory_cap

    assert memory_cap(1280, 720) >= 16  # every core of a big machine on 720p
    assert 8 <= memory_cap(1920, 1080) <= 16
    assert memory_cap(3840, 2160) <= 3  # 4K: the extra decoders stay under 512 MiB
    assert memory_cap(1, 1) > 1000 and memory_cap(7680, 4320) == 1
