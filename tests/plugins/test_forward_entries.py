"""Forward-decoded streams (MPEG-TS) skip, undecoded, the packets before the H.264
IDR frame a group of wanted frames starts from, and stay exact where no frame is an IDR."""

from __future__ import annotations

from pathlib import Path

import pytest
from exact import assert_exact, full_decode

import vidtt
import vidtt.media.decode.index as index_module
from vidtt.media.decode.index import is_idr
from vidtt.testing import make_video

IDR_EVERY_12 = {"bframes": 2, "gop": 12}


def _sample_exact(path: Path, **options: object) -> vidtt.Clip:
    clip = vidtt.sample(path, **options)
    assert not [w for w in clip.warnings if "did not decode" in w], clip.warnings
    assert_exact(clip, path, full_decode(path))
    return clip


def test_sparse_frames_skip_whole_groups(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.ts", frames=96, **IDR_EVERY_12)
    clip = _sample_exact(path, num_frames=4)
    assert clip.metadata["access"] == "forward by pts"
    assert clip.metadata["decoded_frames"] < 48, clip.metadata
    _sample_exact(path, num_frames=30)
    _sample_exact(path, sampler="keyframe", max_frames=5)


@pytest.mark.parametrize(
    "params", ["intra-refresh=1:keyint=20", "open-gop=1:keyint=12:min-keyint=12:scenecut=0"]
)
def test_keyframes_that_are_not_idr_frames_are_decoded_through(tmp_path: Path, params: str) -> None:
    path = make_video(tmp_path / "b.ts", frames=60, options={"x264-params": params})
    _sample_exact(path, num_frames=5)


def test_a_missed_entry_point_falls_back_to_decoding_every_packet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_video(tmp_path / "c.ts", frames=48, **IDR_EVERY_12)
    forward_index = index_module._forward_index

    def wrong_entries(*args: object, **kwargs: object) -> index_module.StreamIndex:
        index = forward_index(*args, **kwargs)  # type: ignore[arg-type]
        index.entries = [13, 29]  # not keyframes: no packet there starts a decode
        return index

    monkeypatch.setattr(index_module, "_forward_index", wrong_entries)
    _sample_exact(path, num_frames=6)


def test_is_idr_reads_annex_b_nal_unit_types() -> None:
    assert is_idr(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x65\x88")
    assert not is_idr(b"\x00\x00\x00\x01\x09\xf0\x00\x00\x01\x41\x9a")
    assert not is_idr(b"\x00\x00\x01")
