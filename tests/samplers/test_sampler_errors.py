"""Bad input gets a clear VidttError subclass with a one-line message, never a hang."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

import vidtt
import vidtt.media.fetch
from vidtt import DecodeError, LimitError, OptionsError, SourceError
from vidtt.testing import make_audio_only, make_video


def check(error: pytest.ExceptionInfo, *words: str) -> None:
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        vidtt.sample(tmp_path / "missing.mp4")
    check(error, "video not found", "missing.mp4")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as error:
        vidtt.sample(tmp_path)
    check(error, "is a directory")


def test_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(SourceError) as error:
        vidtt.sample(tmp_path / "a")
    check(error, "cannot read")


def test_zero_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DecodeError) as error:
        vidtt.sample(tmp_path / "empty.mp4")
    check(error, "empty")
    with pytest.raises(DecodeError):
        vidtt.sample(b"")


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.mp4"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(DecodeError) as error:
        vidtt.sample(path)
    check(error, "not a readable video")


def test_image_file(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32), "red").save(tmp_path / "still.png")
    with pytest.raises(DecodeError) as error:
        vidtt.sample(tmp_path / "still.png")
    check(error, "is an image, not a video")


def test_audio_only(tmp_path: Path) -> None:
    with pytest.raises(DecodeError) as error:
        vidtt.sample(make_audio_only(tmp_path / "sound.m4a"))
    check(error, "no video stream", "audio")


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.9])
def test_truncated_webm_returns_what_decoded_with_a_warning(tmp_path, videos, fraction) -> None:
    data = videos["vp9"].read_bytes()
    path = tmp_path / "cut.webm"
    path.write_bytes(data[: int(len(data) * fraction)])
    clip = vidtt.sample(path, "interval", every=0.25)
    assert 0 < clip.info.frame_count < 48
    assert clip.indices == sorted(clip.indices)
    assert any("cut short or damaged" in w for w in clip.warnings), clip.warnings


def test_truncated_mp4_is_a_decode_error(tmp_path, videos) -> None:
    data = videos["h264"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is at the end: unreadable
    with pytest.raises(DecodeError) as error:
        vidtt.sample(path)
    check(error, "not a readable video")


def test_more_frames_than_exist(videos) -> None:
    with pytest.raises(OptionsError) as error:
        vidtt.sample(videos["h264"], num_frames=100)
    check(error, "asked for 100 frames", "only 48", "num_frames <= 48")


@pytest.mark.parametrize(
    "options,words",
    [
        ({"num_frames": 0}, ["num_frames", "greater than or equal to 1"]),
        ({"num_frames": -3}, ["num_frames"]),
        ({"start": 2, "end": 1}, ["end (1.0) must be after start (2.0)"]),
        ({"size": 10, "max_side": 10}, ["size or max_side"]),
        ({"frames": 8}, ["frames: unknown option"]),
    ],
)
def test_bad_options(videos, options, words) -> None:
    with pytest.raises(OptionsError) as error:
        vidtt.sample(videos["h264"], **options)
    check(error, "sampler 'uniform'", *words)


def test_range_outside_the_video(videos) -> None:
    with pytest.raises(OptionsError) as error:
        vidtt.sample(videos["h264"], start=50)
    check(error, "no frames", "lasts 2.000 s")


def test_interval_longer_than_the_video(videos) -> None:
    with pytest.raises(OptionsError) as error:
        vidtt.sample(videos["h264"], "interval", every=30)
    check(error, "longer than", "min_frames")


def test_unknown_sampler_and_source_type(videos) -> None:
    with pytest.raises(vidtt.UnknownNameError) as error:
        vidtt.sample(videos["h264"], "fancy")
    check(error, "known samplers")
    with pytest.raises(SourceError) as error:
        vidtt.sample(12345)
    check(error, "unsupported video source of type int")


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://host/v.mp4", "concat:a|b", "rtsp://cam/stream"]
)
def test_disallowed_schemes(url) -> None:
    with pytest.raises(SourceError):
        vidtt.sample(url)


def test_unicode_path_with_spaces(tmp_path: Path) -> None:
    path = make_video(tmp_path / "vidéo de chat 猫.mp4", frames=10)
    assert len(vidtt.sample(path, num_frames=3)) == 3


# -- URLs, served on loopback --------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    video: bytes = b""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"\0" * 10)
            self.wfile.flush()
            time.sleep(3)
            return
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            target = self.path[len("/redirect/") :]
            self.send_header("Location", target if "://" in target else f"/{target}")
            self.end_headers()
            return
        if self.path == "/missing":
            self.send_error(404)
            return
        self.send_response(200)
        if self.path != "/chunked":
            self.send_header("Content-Length", str(len(self.video)))
        self.end_headers()
        self.wfile.write(self.video)


@pytest.fixture(scope="module")
def server(videos) -> Iterator[str]:
    Handler.video = videos["h264"].read_bytes()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def loopback_allowed() -> Iterator[None]:
    with vidtt.limits.use(block_private_addresses=False):
        yield


def test_url_source(server, videos, loopback_allowed) -> None:
    clip = vidtt.sample(f"{server}/video.mp4", num_frames=4)
    local = vidtt.sample(videos["h264"], num_frames=4)
    assert clip.indices == local.indices and clip.source.endswith("/video.mp4")


def test_private_addresses_are_refused_by_default(server) -> None:
    with pytest.raises(SourceError) as error:
        vidtt.sample(f"{server}/video.mp4")
    check(error, "private, loopback or link-local", "VIDTT_LIMIT_BLOCK_PRIVATE_ADDRESSES=0")


def test_url_errors(server, loopback_allowed) -> None:
    with pytest.raises(SourceError) as error:
        vidtt.sample(f"{server}/missing")
    check(error, "HTTP 404")
    with vidtt.limits.use(max_download_bytes=2000, connect_timeout=0.5, read_timeout=0.5):
        with pytest.raises(LimitError) as error:
            vidtt.sample(f"{server}/video.mp4")
        check(error, "larger than the 2000 byte limit")
        with pytest.raises(LimitError) as error:
            vidtt.sample(f"{server}/chunked")
        check(error, "larger than the 2000 byte limit")
        started = time.monotonic()
        with pytest.raises(SourceError) as error:
            vidtt.sample(f"{server}/stall")
        assert time.monotonic() - started < 2.5
        check(error, "no answer in time")


def test_redirects_are_counted_and_rechecked(server, loopback_allowed) -> None:
    assert len(vidtt.sample(f"{server}/redirect/video.mp4", num_frames=2)) == 2
    with pytest.raises(SourceError) as error:
        vidtt.sample(f"{server}/redirect/file:///etc/passwd")
    check(error, "is not allowed")
    with vidtt.limits.use(max_redirects=1), pytest.raises(SourceError) as error:
        vidtt.sample(f"{server}/redirect/redirect/video.mp4")
    check(error, "redirected more than 1 times")
    # redirects to private addresses: tests/media/test_fetch.py


def test_unreachable_url(loopback_allowed) -> None:
    with pytest.raises(SourceError) as error:
        vidtt.sample("http://127.0.0.1:9/nothing.mp4")
    check(error, "cannot fetch")
