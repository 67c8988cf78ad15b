"""Untrusted media, limits, faults: specific errors, nothing left behind, no hang."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import psutil
import pytest
from PIL import Image

import vidtt
from vidtt import DecodeError, LimitError, OptionsError, SourceError
from vidtt.testing import make_video


@pytest.fixture
def no_leaks(tmp_path, monkeypatch):
    """Fails a test that leaves open files, threads or temporary files behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    process = psutil.Process()
    files, threads = process.num_fds(), threading.active_count()
    yield
    assert process.num_fds() <= files, "file handles left open"
    assert threading.active_count() <= threads, "threads left running"
    assert list((tmp_path / "tmp").iterdir()) == [], "temporary files left"


def one_line(error: pytest.ExceptionInfo, *words: str) -> None:
    message = str(error.value)
    assert message and "\n" not in message
    for word in words:
        assert word in message, message


def test_header_only_mp4(tmp_path, videos, no_leaks) -> None:
    data = videos["h264"].read_bytes()
    for cut in (32, 200):
        (tmp_path / "head.mp4").write_bytes(data[:cut])
        with pytest.raises(DecodeError) as error:
            vidtt.sample(tmp_path / "head.mp4")
        one_line(error, "not a readable video")


def test_wrong_extension_still_works(tmp_path, videos, no_leaks) -> None:
    path = tmp_path / "really-an-mp4.avi"
    path.write_bytes(videos["h264"].read_bytes())
    assert vidtt.sample(path, num_frames=3).info.codec == "h264"


def test_jpeg_named_like_a_video(tmp_path, no_leaks) -> None:
    Image.new("RGB", (64, 48), "blue").save(tmp_path / "photo.mp4", format="JPEG")
    with pytest.raises(DecodeError) as error:
        vidtt.sample(tmp_path / "photo.mp4")
    one_line(error, "is an image, not a video")


def test_one_frame_video(tmp_path, no_leaks) -> None:
    path = make_video(tmp_path / "one.mp4", frames=1)
    clip = vidtt.sample(path, num_frames=1)
    assert clip.indices == [0] and clip.info.frame_count == 1
    with pytest.raises(OptionsError) as error:
        vidtt.sample(path, num_frames=2)
    one_line(error, "only 1")
    assert len(vidtt.sample(path, "keyframe")) == 1


def test_absurd_timing_metadata(tmp_path, no_leaks) -> None:
    times = [i * 100_000.0 for i in range(5)]  # frames more than a day apart
    path = make_video(tmp_path / "slow.mkv", frames=5, frame_times=times)
    clip = vidtt.sample(path, "interval", every=100_000)
    assert clip.indices == [0, 1, 2, 3, 4]
    assert clip.timestamps == pytest.approx(times)


def test_frame_size_limit(videos, no_leaks) -> None:
    with vidtt.limits.use(max_pixels=100 * 100), pytest.raises(LimitError) as error:
        vidtt.sample(videos["h264"])
    one_line(error, "160x120 (19200 pixels)", "max_pixels")


def test_frame_count_limit(videos, no_leaks) -> None:
    with vidtt.limits.use(max_frames=4), pytest.raises(LimitError) as error:
        vidtt.sample(videos["h264"], num_frames=8)
    one_line(error, "8 frames asked", "limit of 4")
    with vidtt.limits.use(max_frames=2), pytest.raises(LimitError):
        vidtt.sample([Image.new("RGB", (8, 8))] * 3)


def test_decode_time_limit(videos, no_leaks) -> None:
    with vidtt.limits.use(decode_seconds=1e-6), pytest.raises(LimitError) as error:
        vidtt.sample(videos["h264_gop"], num_frames=8)
    one_line(error, "decoding took over", "decode_seconds")


def test_limits_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("VIDTT_LIMIT_MAX_FRAMES", "3")
    monkeypatch.setenv("VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES", "0")
    limits = vidtt.limits.from_environment()
    assert limits.max_frames == 3 and limits.block_private_addresses is False
    monkeypatch.setenv("VIDTT_LIMIT_MAX_PIXELS", "lots")
    with pytest.raises(vidtt.ConfigError, match="max_pixels"):
        vidtt.limits.from_environment()


def test_invalid_limits() -> None:
    with pytest.raises(vidtt.ConfigError) as error:
        vidtt.limits.make(max_frames=0)
    one_line(error, "max_frames")
    with pytest.raises(vidtt.ConfigError):
        vidtt.load_config({"limits": {"max_pixels": -1}})


@pytest.mark.parametrize(
    "playlist",
    [
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{segment}\n#EXT-X-ENDLIST\n",
        "ffconcat version 1.0\nfile '{segment}'\n",
    ],
)
def test_playlists_cannot_open_other_files(tmp_path, videos, playlist, no_leaks) -> None:
    path = tmp_path / "list.m3u8"
    path.write_text(playlist.format(segment=videos["h264"]))
    with pytest.raises(DecodeError) as error:
        vidtt.sample(path)
    one_line(error)


def test_protocol_names_are_just_paths(tmp_path, videos, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    tricks = (
        f"concat:{videos['h264']}|{videos['vp9']}",
        f"subfile,,start,0,end,100,,:{videos['h264']}",
    )
    for name in tricks:
        with pytest.raises(SourceError, match="video not found"):
            vidtt.sample(name)
    (tmp_path / "concat:odd name.mp4").write_bytes(videos["h264"].read_bytes())
    assert len(vidtt.sample("concat:odd name.mp4", num_frames=2)) == 2  # a real file's name


def test_bad_inputs_leave_nothing_behind(tmp_path, videos, no_leaks) -> None:
    data = videos["vp9"].read_bytes()
    bad = [b"", os.urandom(4096), data[:100], data[: len(data) // 2]]
    for blob in bad:
        with contextlib.suppress(vidtt.VidttError):
            vidtt.sample(blob, num_frames=2)
    for blob in bad[1:]:
        with pytest.raises(vidtt.VidttError):
            vidtt.sample(blob[:64], num_frames=2)


def test_plugin_that_hangs_at_import(plugin_dist, monkeypatch) -> None:
    plugin_dist("slow-dist", "slow_mod", "import time\ntime.sleep(30)\n")
    monkeypatch.setenv("VIDTT_PLUGIN_TIMEOUT", "0.5")
    started = time.monotonic()
    registry = vidtt.registry.Registry(use_environment=False)
    with pytest.warns(vidtt.registry.PluginLoadWarning, match="did not finish within 0.5 s"):
        assert "uniform" in registry.names("samplers")
    assert time.monotonic() - started < 5


def test_sampling_many_videos_in_threads(videos) -> None:
    paths = [videos[name] for name in ("h264", "vp9", "mpeg4", "h264_gop", "vfr")] * 4
    expected = [vidtt.sample(p, num_frames=4).indices for p in paths]
    with vidtt.limits.use(max_frames=8), ThreadPoolExecutor(8) as pool:
        clips = list(pool.map(lambda p: vidtt.sample(p, num_frames=4), paths))
    assert [c.indices for c in clips] == expected
    reference = {str(p): vidtt.sample(p, num_frames=4) for p in paths[:5]}
    for path, clip in zip(paths, clips):
        assert all(
            np.array_equal(np.asarray(a), np.asarray(b))
            for a, b in zip(clip.frames, reference[str(path)].frames)
        )


def test_one_pipeline_from_many_threads(llava, videos) -> None:
    questions = [
        ("h264", "What is happening?"),
        ("vp9", "Describe it."),
        ("mpeg4", "Is there a cat?"),
        ("vfr", "What moves?"),
    ]
    expected = [llava.ask(videos[v], q).token_ids for v, q in questions]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda vq: llava.ask(videos[vq[0]], vq[1]), questions * 2))
    assert [a.token_ids for a in answers] == expected * 2


def test_pipeline_applies_config_limits(llava_dir, videos) -> None:
    # a frame count over the config's own limits is refused before the model loads
    with pytest.raises(vidtt.ConfigError, match="num_frames=4 is over the limit of 2"):
        vidtt.Pipeline(
            model=str(llava_dir),
            backend="cpu",
            limits={"max_frames": 2},
            sampler_options={"num_frames": 4},
        )
    pipe = vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        limits={"max_frames": 2},
        sampler="interval",
        sampler_options={"every": 0.1},
    )
    with pytest.raises(LimitError):
        pipe.ask(videos["h264"], "What is happening?")
    assert vidtt.limits.current().max_frames == vidtt.limits.Limits().max_frames


def test_error_mid_download_leaves_nothing(tmp_path, no_leaks) -> None:
    with vidtt.limits.use(block_private_addresses=False), pytest.raises(SourceError):
        vidtt.sample("http://127.0.0.1:9/none.mp4")


@pytest.mark.parametrize("kind", ["path", "bytes", "pil", "array", "server"])
def test_image_pixel_limit_on_every_entry(kind, tmp_path, no_leaks) -> None:
    """One pixel limit for prompt images, however they arrive (refused before decoding)."""
    import io

    from vidtt.media.images import load_image
    from vidtt.serve.errors import APIError
    from vidtt.serve.media import open_image

    image = Image.new("RGB", (200, 150), "red")
    encoded = io.BytesIO()
    image.save(encoded, "PNG")
    (tmp_path / "big.png").write_bytes(encoded.getvalue())
    given = {
        "path": tmp_path / "big.png",
        "bytes": encoded.getvalue(),
        "pil": image,
        "array": np.zeros((150, 200, 3), np.uint8),
    }
    assert load_image(given.get(kind, image)).size == (200, 150)  # within the default limit
    with vidtt.limits.use(max_pixels=100 * 100):
        if kind == "server":
            with pytest.raises(APIError) as refused:
                open_image(encoded.getvalue(), "messages[0].content[1]")
            assert refused.value.code == "limit_exceeded"
            assert refused.value.param == "messages[0].content[1]"
            assert "200x150 pixels" in refused.value.message
            return
        with pytest.raises(LimitError) as error:
            load_image(given[kind])
    one_line(error, "200x150 pixels", "limit of 10000", "max_pixels")


@pytest.mark.parametrize("data", [b"", b"not an image", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_images_are_one_line(data, tmp_path, no_leaks) -> None:
    from vidtt.media.images import load_image

    (tmp_path / "bad.png").write_bytes(data)
    for given in (data, tmp_path / "bad.png"):
        with pytest.raises(OptionsError) as error:
            load_image(given)
        one_line(error, "cannot read")
    with pytest.raises(OptionsError) as error:
        load_image(tmp_path / "missing.png")
    one_line(error, "image not found")
