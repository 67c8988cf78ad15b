"""An audit of the samplers beyond the main matrix: more codecs, pixel formats and containers,
rotations, lead-in frames, one-frame videos, timestamps that say nothing, short joined streams,
option values of every kind (Python and the `vidtt sample` command) and frame lists."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from commands import console, in_process
from exact import assert_exact, full_decode

import vidtt
from vidtt import LimitError, OptionsError, VideoSource
from vidtt.testing import make_video
from vidtt.testing.videos import read_frame_number

B = {"bframes": 2, "gop": 8}
SMALL = (64, 48)
X265 = {"x265-params": "log-level=none:keyint=8:bframes=2"}

# name: (file name, make_video arguments)
ENCODES: dict[str, tuple[str, dict[str, Any]]] = {
    "mpeg4 b-frames in mp4": ("mpeg4.mp4", {"codec": "mpeg4", **B}),
    "mpeg2 b-frames in mkv": ("mpeg2.mkv", {"codec": "mpeg2video", **B}),
    "mpeg2 in mpeg-ts": ("mpeg2.ts", {"codec": "mpeg2video", **B}),
    "mpeg1 in mpeg-ps": ("mpeg1.mpg", {"codec": "mpeg1video", **B}),
    "mjpeg in avi": ("mjpeg.avi", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}),
    "mjpeg in mov": ("mjpeg.mov", {"codec": "mjpeg", "pix_fmt": "yuvj422p"}),
    "vp8 in webm": ("vp8.webm", {"codec": "libvpx", "gop": 8}),
    "vp9 4:4:4 in webm": ("vp9.webm", {"pix_fmt": "yuv444p", "gop": 8}),
    "hevc b-frames in mp4": ("hevc.mp4", {"codec": "libx265", "options": X265}),
    "hevc b-frames in mpeg-ts": ("hevc.ts", {"codec": "libx265", "options": X265}),
    "hevc 10-bit in mkv": (
        "hevc10.mkv",
        {"codec": "libx265", "pix_fmt": "yuv420p10le", "options": X265},
    ),
    "raw hevc": ("raw.hevc", {"codec": "libx265", "format": "hevc", "options": X265}),
    "ffv1 in nut": ("ffv1.nut", {"codec": "ffv1"}),
    "ffv1 rgb in mkv": ("ffv1.mkv", {"codec": "ffv1", "pix_fmt": "bgr0"}),
    "h264 4:4:4": ("h444.mp4", {"pix_fmt": "yuv444p", **B}),
    "h264 4:2:2": ("h422.mkv", {"pix_fmt": "yuv422p", **B}),
    "h264 full range": ("hj.mp4", {"pix_fmt": "yuvj420p", **B}),
    "h264 10-bit": ("h10.mp4", {"pix_fmt": "yuv420p10le", **B}),
    "h264 grey": ("grey.mkv", {"pix_fmt": "gray", **B}),
    "h264 rgb": ("rgb.mkv", {"codec": "libx264rgb", "pix_fmt": "rgb24", **B}),
    "h264 open gop": (
        "open.mkv",
        {"options": {"x264-params": "keyint=8:min-keyint=8:open-gop=1:bframes=3:scenecut=0"}},
    ),
    "h264 in flv": ("h264.flv", B),
    "h264 in nut": ("h264.nut", B),
    "h264 b-frames in avi": ("h264.avi", {"codec": "libx264", **B}),
    "mpeg4 b-frames in avi": ("mpeg4.avi", {"codec": "mpeg4", **B}),
    "h264 in m2ts": ("h264.m2ts", B),
    "h263 in 3gp": ("h263.3gp", {"codec": "h263", "size": (176, 144)}),
    "flv1 in flv": ("flv1.flv", {"codec": "flv", "gop": 8}),
    "mpeg4 raw (m4v)": ("raw.m4v", {"codec": "mpeg4", "format": "m4v", **B}),
    "mpeg2 in mxf": ("mpeg2.mxf", {"codec": "mpeg2video", **B}),
    "prores in mov": ("prores.mov", {"codec": "prores", "pix_fmt": "yuv422p10le"}),
    "png in mov": ("png.mov", {"codec": "png", "pix_fmt": "rgb24"}),
    "huffyuv in avi": ("huffyuv.avi", {"codec": "huffyuv", "pix_fmt": "yuv422p"}),
    "rawvideo in y4m": ("raw.y4m", {"codec": "rawvideo"}),
    "mp4 negative cts offsets": (
        "negcts.mp4",
        {"container_options": {"movflags": "negative_cts_offsets"}, **B},
    ),
    "mp4 cmaf": ("cmaf.mp4", {"container_options": {"movflags": "cmaf"}, **B}),
    "mp4 a fragment a frame": (
        "fragall.mp4",
        {"container_options": {"movflags": "frag_every_frame+empty_moov"}, **B},
    ),
    "mkv lead-in (negative times)": ("lead.mkv", {"lead_in": 4, **B}),
    "mov lead-in (edit list)": ("lead.mov", {"lead_in": 4, **B}),
    "mpeg-ts lead-in": ("lead.ts", {"lead_in": 4, **B}),
    "flv lead-in": ("lead.flv", {"lead_in": 4, **B}),
}


def _encode(root: Path, name: str, frames: int = 20) -> Path:
    file, options = ENCODES[name]
    options = {"size": SMALL, **options}
    return make_video(root / file, frames=frames, **options)


@pytest.mark.parametrize("name", list(ENCODES))
def test_more_codecs_and_containers_give_exact_frames(tmp_path: Path, name: str) -> None:
    path = _encode(tmp_path, name)
    reference = full_decode(path)
    total = len(reference)
    assert total in (16, 20)  # 16: an edit list hides the 4 lead-in frames of the MOV
    duration = vidtt.sample(path, num_frames=1).info.duration
    assert duration and duration > 0.5
    for sampler, options in [
        ("uniform", {"num_frames": 5}),
        ("uniform", {"num_frames": total}),
        ("uniform", {"num_frames": 3, "start": duration / 4, "end": duration * 0.8, "size": 33}),
        ("interval", {"every": duration / 5}),
        ("keyframe", {"max_frames": 3}),
    ]:
        clip = vidtt.sample(path, sampler, **options)
        assert not [w for w in clip.warnings if "did not decode" in w], (options, clip.warnings)
        assert_exact(clip, path, reference)
        if "num_frames" in options and "start" not in options:
            assert len(clip) == options["num_frames"], (options, clip.indices)
    assert clip.info.frame_count == total


def test_avi_times_of_reordered_frames_are_not_display_times(tmp_path: Path) -> None:
    """AVI times count packets in decoding order; the decoder shows B-frames in another."""
    path = make_video(tmp_path / "b.avi", frames=20, size=SMALL, codec="libx264", **B)
    for count, expected in [(20, list(range(20))), (5, [2, 6, 10, 14, 18])]:
        clip = vidtt.sample(path, num_frames=count)
        assert clip.indices == expected
        assert [read_frame_number(frame) for frame in clip.array] == expected
    clip = vidtt.sample(path, "interval", every=0.25)
    assert [read_frame_number(frame) for frame in clip.array] == clip.indices == [0, 6, 12, 18]


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv"])
@pytest.mark.parametrize("rotation", [180, 270, -90])
def test_rotations_with_every_size_option(tmp_path: Path, suffix: str, rotation: int) -> None:
    path = make_video(tmp_path / f"r{suffix}", frames=8, size=(34, 18), rotation=rotation, gop=4)
    reference = full_decode(path)
    quarter = rotation % 180 != 0
    upright = (18, 34) if quarter else (34, 18)
    for options, size in [
        ({}, upright),
        ({"size": 9}, (9, 17) if quarter else (17, 9)),
        ({"max_side": 17}, (9, 17) if quarter else (17, 9)),
        ({"size": (5, 11)}, (5, 11)),
    ]:
        clip = vidtt.sample(path, num_frames=3, **options)
        assert (clip.width, clip.height) == size, (options, clip.array.shape)
        assert clip.info.rotation % 360 == rotation % 360
        assert (clip.info.width, clip.info.height) == upright
        assert_exact(clip, path, reference)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts", ".webm", ".avi", ".h264"])
def test_a_one_frame_video_lasts_one_frame(tmp_path: Path, suffix: str) -> None:
    path = make_video(tmp_path / f"one{suffix}", frames=1, size=SMALL)
    clip = vidtt.sample(path)
    assert clip.indices == [0]
    assert clip.info.duration and clip.info.duration == pytest.approx(1 / clip.info.fps)
    assert not [w for w in clip.warnings if "cut short" in w], clip.warnings
    for options in [{"every": 0.01}, {"fps": 100}, {"every": 0.01, "end": 0.02}]:
        clip = vidtt.sample(path, "interval", **options)
        assert clip.indices == [0]
        assert_exact(clip, path)
    with pytest.raises(OptionsError, match="longer than"):
        vidtt.sample(path, "interval", every=1)


def test_a_one_frame_list_lasts_one_frame() -> None:
    frame = np.full((4, 6, 3), 7, dtype=np.uint8)
    assert vidtt.sample([frame], "interval", every=0.5).indices == [0]
    source = VideoSource.from_frames([frame], fps=10)
    assert vidtt.sample(source, "interval", fps=20).indices == [0]
    assert vidtt.sample(source).info.duration == pytest.approx(0.1)


def _retimed(source: Path, path: Path, times: Any) -> Path:
    """`source` remuxed with packet `i` given the time `times(i, packet)` (pts and dts)."""
    with av.open(str(source)) as read, av.open(str(path), "w") as write:
        stream = read.streams.video[0]
        out = write.add_stream_from_template(stream)
        for i, packet in enumerate(p for p in read.demux(stream) if p.size):
            packet.pts = packet.dts = times(i, packet)
            packet.stream = out
            write.mux(packet)
    return path


@pytest.mark.parametrize("gop", [1, 5])
def test_one_time_for_every_frame_falls_back_to_the_frame_rate(tmp_path: Path, gop: int) -> None:
    source = make_video(tmp_path / "a.mkv", frames=20, size=SMALL, gop=gop)
    path = _retimed(source, tmp_path / "same.mkv", lambda i, packet: 0)
    reference = full_decode(path)
    numbers = [read_frame_number(f.to_ndarray(format="rgb24")) for f in reference]
    assert numbers == list(range(20))
    clip = vidtt.sample(path, num_frames=20)
    assert clip.info.duration == pytest.approx(20 / 24, rel=0.01)
    assert clip.timestamps == sorted(set(clip.timestamps))
    for sampler, options in [
        ("interval", {"every": 0.25}),
        ("uniform", {"num_frames": 3, "start": 0.3, "end": 0.7}),
        ("uniform", {"num_frames": 20}),
    ]:
        clip = vidtt.sample(path, sampler, **options)
        assert_exact(clip, path, reference)
        got = [read_frame_number(frame) for frame in clip.array]
        assert got == clip.indices
    assert vidtt.sample(path, "interval", every=0.25).indices == [0, 6, 12, 18]


@pytest.mark.parametrize(
    "suffix,codec,copies,seconds",
    [(".mpg", "mpeg2video", 2, 2.5), (".ts", "mpeg2video", 3, 3.75), (".ts", "mpeg4", 2, 2.5)],
)
def test_short_joined_streams_with_b_frames_run_on(
    tmp_path: Path, suffix: str, codec: str, copies: int, seconds: float
) -> None:
    """Restarts are found even when a part lasts less than 16 of the steps between packets
    in decoding order (B-frames make those steps several frames long)."""
    part = make_video(tmp_path / f"part{suffix}", frames=30, size=SMALL, codec=codec, **B)
    path = tmp_path / f"joined{suffix}"
    path.write_bytes(part.read_bytes() * copies)
    reference = full_decode(path)
    assert len(reference) == 30 * copies
    clip = vidtt.sample(path, num_frames=30 * copies)
    assert clip.info.duration == pytest.approx(seconds, rel=0.02)
    assert clip.timestamps == sorted(set(clip.timestamps))
    for options in [{"num_frames": 4, "start": seconds - 1}, {"num_frames": 7}]:
        clip = vidtt.sample(path, **options)
        assert_exact(clip, path, reference)
        assert clip.timestamps[0] >= options.get("start", 0)
    clip = vidtt.sample(path, "interval", every=1)
    assert len(clip) == round(seconds + 0.49)
    assert_exact(clip, path, reference)


def test_interval_edges_follow_the_frames_on_screen(tmp_path: Path) -> None:
    path = make_video(tmp_path / "a.mp4", frames=24, size=SMALL, gop=6)
    assert vidtt.sample(path, "interval", every=1.0).indices == [0]  # exactly the length
    assert vidtt.sample(path, "interval", every=0.999).indices == [0, 23]
    assert vidtt.sample(path, "interval", fps=1.1).indices == [0, 21]
    assert vidtt.sample(path, "interval", every=0.1).indices == [0, 2, 4, 7, 9, 12, 14, 16, 19, 21]
    assert vidtt.sample(path, "interval", every=0.1, max_frames=1).indices == [12]
    clip = vidtt.sample(path, "interval", every=10, min_frames=5)
    assert clip.indices == [2, 7, 12, 16, 21] and "min_frames=5" in clip.warnings[0]
    clip = vidtt.sample(path, "interval", every=0.5, min_frames=100)
    assert clip.indices == list(range(24))  # every frame, once
    for options in [{"every": 1.1}, {"fps": 0.999}, {"every": 0.3, "start": 0.95}]:
        with pytest.raises(OptionsError, match="longer than"):
            vidtt.sample(path, "interval", **options)


@pytest.mark.parametrize(
    "sampler,options,words",
    [
        ("uniform", {"num_frames": 2.5}, "fractional"),
        ("uniform", {"num_frames": "x"}, "valid integer"),
        ("uniform", {"num_frames": None}, "valid integer"),
        ("uniform", {"num_frames": [3]}, "valid integer"),
        ("uniform", {"num_frames": float("nan")}, "finite"),
        ("uniform", {"num_frames": 10**30}, "less than or equal to 10000"),
        ("uniform", {"num_frames": 25}, "has only 24: ask for num_frames <= 24"),
        ("uniform", {"num_frames": 13, "start": 0.5}, "has only 12 in the chosen range: ask"),
        ("uniform", {"start": "abc"}, "valid number"),
        ("uniform", {"start": 10**400}, "start"),
        ("uniform", {"end": -0.0}, "greater than 0"),
        ("uniform", {"end": float("-inf")}, "finite"),
        ("uniform", {"start": 0.99}, "no frames"),
        ("uniform", {"num_frames": 2, "end": 1e-320}, "only 1 in the chosen range"),
        ("uniform", {"size": (1,)}, "size"),
        ("uniform", {"size": (1, 2, 3)}, "at most 2 items"),
        ("uniform", {"size": (10.5, 3)}, "fractional"),
        ("uniform", {"size": "224x100"}, "size"),
        ("uniform", {"size": {"a": 1}}, "size"),
        ("uniform", {"size": (5, 0)}, "positive"),
        ("uniform", {"max_side": (5, 5)}, "max_side"),
        ("uniform", {"max_side": float("inf")}, "finite"),
        ("uniform", {"rule": "bogus"}, "'centers', 'linspace' or 'arange'"),
        ("interval", {"every": 1e308}, "longer than"),
        ("interval", {"fps": 1e-9}, "longer than"),
        ("interval", {"max_frames": float("nan"), "every": 0.1}, "finite"),
        ("interval", {"min_frames": 0}, "min_frames"),
        ("keyframe", {"min_frames": 1}, "unknown option"),
        ("keyframe", {"max_frames": 10**9}, "10000"),
    ],
)
def test_every_option_value_class_is_checked(
    tmp_path_factory: pytest.TempPathFactory, sampler: str, options: dict, words: str
) -> None:
    path = _one_second(tmp_path_factory)
    with pytest.raises(OptionsError) as error:
        vidtt.sample(path, sampler, **options)
    assert words in str(error.value)


def test_huge_sizes_are_refused_by_the_pixel_limit(tmp_path_factory) -> None:
    path = _one_second(tmp_path_factory)
    for options in [{"size": 2**31}, {"size": 2**63}, {"size": (2**40, 1)}]:
        with pytest.raises(LimitError, match="max_pixels"):
            vidtt.sample(path, num_frames=1, **options)
    clip = vidtt.sample(path, num_frames=1, max_side=2**63)  # never upscales
    assert clip.array.shape == (1, 48, 64, 3)


BAD_VALUES = [
    (["--frames", "0"], "num_frames"),
    (["--frames", "nan"], "--frames"),
    (["--frames", "99999999999999999999999"], "over the limit of 2048 frames"),
    (["--frames", "25"], "num_frames <= 24"),
    (["--size", "0x5"], "positive"),
    (["--size", "5x"], "--size"),
    (["--size", "3x5x7"], "--size"),
    (["--size", "99999999999999999999"], "max_pixels"),
    (["--max-side", "nan"], "--max-side"),
    (["--start", "nan"], "finite"),
    (["--start", "5"], "no frames"),
    (["--end", "-inf"], "--end"),
    (["--every", "0"], "greater than 0"),
    (["--every", "inf"], "finite"),
    (["--fps", "nan"], "finite"),
    (["--every", "0.5", "--fps", "2"], "not both"),
    (["--sampler", "keyframe", "--every", "1"], "unknown option"),
    (["-o", "num_frames=Infinity"], "finite"),
    (["-o", "size=[0,5]"], "positive"),
    (["-o", "novalue"], "KEY=VALUE"),
]


@pytest.mark.parametrize("arguments,words", BAD_VALUES)
def test_the_sample_command_refuses_bad_values_in_words(
    tmp_path_factory: pytest.TempPathFactory, arguments: list[str], words: str
) -> None:
    path = _one_second(tmp_path_factory)
    run = console if arguments == BAD_VALUES[0][0] else in_process  # the first: a real process
    done = run("sample", str(path), *arguments)
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr and words in done.stderr, done.stderr


EDGE_VALUES = [
    (["--frames", "3"], [4, 12, 20], (64, 48)),
    (["--size", "7X9", "--frames", "1"], [12], (7, 9)),
    (["--max-side", "1", "--frames", "1"], [12], (1, 1)),
    (["--every", "1e-300"], list(range(24)), (64, 48)),
    (["--fps", "1e308", "-o", "max_frames=2"], [0, 23], (64, 48)),
    (["--sampler", "interval", "--frames", "1000000000000"], [0], (64, 48)),
    (["-o", "size=[3,4]", "--frames", "1"], [12], (3, 4)),
    (["--start", "0.5", "--end", "0.75", "--frames", "2"], [13, 16], (64, 48)),
]


@pytest.mark.parametrize("arguments,indices,size", EDGE_VALUES)
def test_the_sample_command_takes_edge_values(
    tmp_path_factory: pytest.TempPathFactory, arguments: list[str], indices: list[int], size: tuple
) -> None:
    path = _one_second(tmp_path_factory)
    out = tmp_path_factory.mktemp("frames")
    run = console if arguments == EDGE_VALUES[0][0] else in_process  # the first: a real process
    done = run("sample", str(path), *arguments, "--out", str(out))
    assert done.returncode == 0, done.stderr
    written = sorted(out.iterdir())
    assert [int(p.name.split("-")[1]) for p in written] == indices
    from PIL import Image

    with Image.open(written[0]) as image:
        assert image.size == size


def test_frame_lists_take_numpy_rates_and_refuse_absurd_ones() -> None:
    frames = np.zeros((10, 4, 6, 3), dtype=np.uint8)
    for fps in [np.float32(2), np.int64(2), np.float64(2)]:
        clip = vidtt.sample(VideoSource.from_frames(frames, fps=fps), num_frames=2)
        assert clip.timestamps == [1.0, 3.5] and clip.info.fps == 2.0
    for fps in [1e-300, 5e-324, True, "2", None]:
        with pytest.raises(OptionsError, match="fps of a frame list"):
            VideoSource.from_frames(frames, fps=fps)
    clip = vidtt.sample(VideoSource.from_frames(frames, fps=1e-6), num_frames=2)
    assert clip.timestamps == [2e6, 7e6]


@pytest.mark.parametrize(
    "frames,words",
    [
        (np.zeros((5, 4, 6), dtype=np.uint8), "shape (5, 4, 6)"),
        (np.zeros((4, 6, 3), dtype=np.uint8), "shape (4, 6, 3)"),
        (np.zeros((2, 4, 6, 3, 1), dtype=np.uint8), "shape (2, 4, 6, 3, 1)"),
        ([np.zeros((4, 6, 3), dtype=np.uint8), None], "item 1 of the frame list is a NoneType"),
        ([np.zeros((4, 6, 3), dtype=np.uint8), "b.png"], "item 1 of the frame list is a str"),
        (np.zeros((5, 4, 6, 2), dtype=np.uint8), "shape (4, 6, 2)"),
        ([np.zeros(3, dtype=np.uint8)], "shape (3,)"),
        ([np.array(3)], "shape ()"),
        ([np.zeros((4, 4, 3), dtype=np.complex64)], "complex64"),
        ([np.full((4, 4, 3), np.inf, dtype=np.float32)], "NaN or infinite"),
    ],
)
def test_bad_frame_arrays_name_the_problem(frames: Any, words: str) -> None:
    with pytest.raises(OptionsError) as error:
        vidtt.sample(frames, num_frames=1)
    assert words in str(error.value)


def test_frame_lists_honour_every_option() -> None:
    frames = [np.full((4, 6, 3), i * 10, dtype=np.uint8) for i in range(10)]
    clip = vidtt.sample(frames, num_frames=2, start=2, end=5)
    assert clip.indices == [2, 4] and [int(f[0, 0, 0]) for f in clip.array] == [20, 40]
    assert vidtt.sample(frames, num_frames=2, end=100).indices == [2, 7]
    assert vidtt.sample(frames).indices == [0, 1, 3, 4, 5, 6, 8, 9]  # default 8 of 10
    with pytest.raises(OptionsError, match="num_frames <= 10"):
        vidtt.sample(frames, num_frames=11)
    with pytest.raises(OptionsError, match="no frames"):
        vidtt.sample(frames, num_frames=1, start=9.5)
    assert vidtt.sample(frames, "keyframe", max_frames=3).indices == [0, 4, 9]
    for options, shape in [({"size": 9}, (9, 14)), ({"size": (3, 17)}, (17, 3))]:
        assert vidtt.sample(frames, num_frames=2, **options).array.shape[1:3] == shape
    with pytest.raises(LimitError, match="max_pixels"):
        vidtt.sample(frames, num_frames=2, size=100_000)
    mixed = [np.zeros((4, 6, 3), dtype=np.uint8), np.full((8, 12, 3), 255, dtype=np.uint8)]
    clip = vidtt.sample(mixed, num_frames=2)
    assert clip.array.shape == (2, 4, 6, 3) and clip.array[1].min() == 255
    clip = vidtt.sample(np.zeros((5, 3, 8, 8), dtype=np.uint8), num_frames=2)  # N, C, H, W
    assert clip.array.shape == (2, 8, 8, 3)


def test_a_clip_is_one_array_with_images_on_demand(tmp_path_factory) -> None:
    clip = vidtt.sample(_one_second(tmp_path_factory), num_frames=3, size=(10, 6))
    assert clip.array.dtype == np.uint8 and clip.array.shape == (3, 6, 10, 3)
    assert clip.array.flags["C_CONTIGUOUS"] and clip.nbytes == 3 * 6 * 10 * 3
    images = clip.frames
    assert [image.size for image in images] == [(10, 6)] * 3 and clip.frames is images
    assert np.array_equal(np.asarray(images[1]), clip.array[1])


def _one_second(factory: pytest.TempPathFactory) -> Path:
    """A 24-frame, 24 fps, 64x48 H.264 MP4 (made once for the session)."""
    root = factory.getbasetemp() / "audit-one-second"
    path = root / "a.mp4"
    if not path.exists():
        root.mkdir(exist_ok=True)
        make_video(path, frames=24, size=SMALL, gop=6)
    return path
