"""Exact frames from the encodes people have: containers, B-frames, joined and restarting
streams, edit lists, duplicate timestamps, missing keyframes, cover pictures."""

from __future__ import annotations

from pathlib import Path

import pytest
from exact import assert_exact, full_decode

import vidtt
from vidtt.testing import make_video

B = {"bframes": 2, "gop": 12}
AV1 = {"options": {"preset": "12"}}  # decoded by libdav1d, which reads skip_frame once


def _joined(root: Path, name: str, *parts: Path) -> Path:
    path = root / name
    path.write_bytes(b"".join(p.read_bytes() for p in parts))
    return path


def _build(root: Path) -> dict[str, Path]:
    videos = {
        "mp4 moov last": make_video(root / "last.mp4", frames=40, **B),
        "mp4 moov first": make_video(
            root / "first.mp4", frames=40, container_options={"movflags": "+faststart"}, **B
        ),
        "mp4 fragmented": make_video(
            root / "frag.mp4",
            frames=40,
            container_options={"movflags": "frag_keyframe+empty_moov"},
            **B,
        ),
        "mp4 edit list": make_video(root / "edit.mp4", frames=40, lead_in=5, **B),
        "mkv": make_video(root / "a.mkv", frames=40, **B),
        "mov": make_video(root / "a.mov", frames=40, **B),
        "webm vp9": make_video(root / "a.webm", frames=40, gop=12),
        "avi mpeg4": make_video(root / "a.avi", frames=40, gop=12),
        "mkv av1": make_video(root / "av1.mkv", frames=40, codec="libsvtav1", gop=12, **AV1),
        "mp4 av1": make_video(root / "av1.mp4", frames=40, codec="libsvtav1", gop=12, **AV1),
        "mpeg-ts b-frames": make_video(root / "b.ts", frames=40, **B),
        "mpeg-ps mpeg2": make_video(root / "b.mpg", frames=40, codec="mpeg2video", **B),
        "annex-b h264": make_video(root / "raw.h264", frames=40, **B),
        "intra refresh": make_video(
            root / "refresh.mp4", frames=40, options={"x264-params": "intra-refresh=1:keyint=20"}
        ),
        "mkv no keyframe flags": make_video(root / "noflags.mkv", frames=40, keyframe_flags=False),
        "mkv 2000 fps (duplicate times)": make_video(root / "dup.mkv", frames=48, fps=2000),
        "mp4 cover picture": make_video(root / "cover.mp4", frames=40, gop=12, cover=True),
        "mkv thumbnail stream first": make_video(root / "thumb.mkv", frames=40, cover=True),
        "vfr": make_video(
            root / "vfr.mp4", frames=30, frame_times=[0.04 * i + 0.3 * (i > 9) for i in range(30)]
        ),
        "rotated": make_video(root / "rot.mp4", frames=24, size=(96, 64), rotation=90),
    }
    ts = videos["mpeg-ts b-frames"]
    videos["mpeg-ts joined (restarting times)"] = _joined(root, "cat.ts", ts, ts)
    wider = make_video(
        root / "wide.ts",
        frames=20,
        size=(192, 96),
        frame_times=[40 / 24 + 1.4 + i / 24 for i in range(20)],
        **B,
    )
    videos["mpeg-ts resolution change"] = _joined(root, "change.ts", ts, wider)
    return videos


@pytest.fixture(scope="module")
def encodes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _build(tmp_path_factory.mktemp("encodes"))


CASES = [
    "mp4 moov last",
    "mp4 moov first",
    "mp4 fragmented",
    "mp4 edit list",
    "mkv",
    "mov",
    "webm vp9",
    "avi mpeg4",
    "mkv av1",
    "mp4 av1",
    "mpeg-ts b-frames",
    "mpeg-ps mpeg2",
    "annex-b h264",
    "intra refresh",
    "mkv no keyframe flags",
    "mkv 2000 fps (duplicate times)",
    "mp4 cover picture",
    "mkv thumbnail stream first",
    "vfr",
    "rotated",
    "mpeg-ts joined (restarting times)",
    "mpeg-ts resolution change",
]


@pytest.mark.parametrize("case", CASES)
def test_every_encode_gives_exact_frames(encodes: dict[str, Path], case: str) -> None:
    path = encodes[case]
    reference = full_decode(path)
    total = len(reference)
    seconds = vidtt.sample(path, num_frames=1).info.duration
    assert seconds
    for sampler, options in [
        ("uniform", {"num_frames": 8}),
        ("uniform", {"num_frames": 5, "start": seconds / 5, "end": seconds * 0.7, "max_side": 50}),
        ("uniform", {"num_frames": total}),
        ("interval", {"every": seconds / 6}),
        ("keyframe", {"max_frames": 3}),
    ]:
        clip = vidtt.sample(path, sampler, **options)
        assert not [w for w in clip.warnings if "did not decode" in w], clip.warnings
        assert_exact(clip, path, reference)
        if sampler == "uniform" and "start" not in options:
            assert len(clip) == options["num_frames"], (sampler, options, clip.indices)
    assert clip.info.frame_count == total


def test_restarting_times_run_on(encodes: dict[str, Path]) -> None:
    """Joined files: the second part's frames come after the first's, in time too."""
    clip = vidtt.sample(encodes["mpeg-ts joined (restarting times)"], num_frames=80)
    assert clip.indices == list(range(80))
    assert all(b > a for a, b in zip(clip.timestamps, clip.timestamps[1:]))


def test_duplicate_times_never_give_one_frame_twice(encodes: dict[str, Path]) -> None:
    clip = vidtt.sample(encodes["mkv 2000 fps (duplicate times)"], num_frames=48)
    assert clip.indices == list(range(48))
    assert len({clip.array[k].tobytes() for k in range(48)}) == 48


def test_edit_list_lead_in_is_not_counted(encodes: dict[str, Path]) -> None:
    clip = vidtt.sample(encodes["mp4 edit list"], num_frames=35)
    assert clip.info.frame_count == 35 and clip.timestamps[0] == 0.0
    from vidtt.testing import read_frame_number

    assert read_frame_number(clip.array[0]) == 5  # frames 0-4 were written before time 0


def test_thumbnail_streams_are_not_sampled(encodes: dict[str, Path]) -> None:
    for case in ("mp4 cover picture", "mkv thumbnail stream first"):
        clip = vidtt.sample(encodes[case], num_frames=4)
        assert (clip.width, clip.height) == (160, 120) and clip.info.frame_count == 40


def test_resolution_change_keeps_the_first_size(encodes: dict[str, Path]) -> None:
    clip = vidtt.sample(encodes["mpeg-ts resolution change"], num_frames=60)
    assert clip.array.shape == (60, 120, 160, 3)


def _cut(source: Path, target: Path, packets: int) -> Path:
    """`source` remuxed without its first `packets` packets: a recording started late."""
    import av

    with av.open(str(source)) as inp, av.open(str(target), "w") as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for n, packet in enumerate(inp.demux(inp.streams.video[0])):
            if packet.size == 0 or n < packets:
                continue
            packet.stream = stream
            out.mux(packet)
    return target


@pytest.mark.parametrize(
    "name, codec", [("cut.mp4", "libx264"), ("cut.mkv", "libx264"), ("cut.ts", "libx264"),
                    ("cut.mpg", "mpeg2video")],
)  # fmt: skip
def test_a_stream_cut_mid_way_counts_only_the_frames_it_can_show(
    tmp_path: Path, name: str, codec: str
) -> None:
    whole = make_video(tmp_path / f"whole{Path(name).suffix}", frames=40, codec=codec, **B)
    path = _cut(whole, tmp_path / name, 3)
    reference = full_decode(path)
    clip = vidtt.sample(path, num_frames=8)
    assert clip.info.frame_count == len(reference) < 40
    assert any("before its first keyframe" in w for w in clip.warnings), clip.warnings
    assert not [w for w in clip.warnings if "did not decode" in w], clip.warnings
    assert_exact(clip, path, reference)
    assert_exact(vidtt.sample(path, "interval", fps=12), path, reference)


def test_an_animated_gif_is_a_video_and_a_still_one_an_image(tmp_path: Path) -> None:
    import numpy as np
    from PIL import Image

    from vidtt.testing import frame_pattern

    frames = [Image.fromarray(frame_pattern(i, 48, 32)) for i in range(12)]
    path = tmp_path / "meme.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=80, loop=0)
    reference = full_decode(path)
    clip = vidtt.sample(path, num_frames=4)
    assert clip.info.frame_count == 12 and clip.info.codec == "gif"
    assert_exact(clip, path, reference)
    assert clip.timestamps == pytest.approx([0.08 * i for i in clip.indices])
    assert_exact(vidtt.sample(path.read_bytes(), "interval", every=0.3), path, reference)
    still = tmp_path / "still.gif"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(still)
    with pytest.raises(vidtt.DecodeError, match="is an image, not a video"):
        vidtt.sample(still)
