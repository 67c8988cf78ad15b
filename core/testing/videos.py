"""Make small synthetic videos with PyAV: for tests, benchmarks and `vidtt demo`.

Every frame differs from its neighbours (a moving bar, a colour that drifts, and the frame
number written as a row of black/white blocks), so a wrong frame is easy to spot.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

CONTAINER_CODECS = {
    ".mp4": "libx264",
    ".mkv": "libx264",
    ".webm": "libvpx-vp9",
    ".avi": "mpeg4",
    ".mov": "libx264",
}
BITS = 16


@functools.lru_cache(maxsize=4)
def _base_pattern(width: int, height: int) -> Any:
    import numpy as np

    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.empty((height, width, 3), dtype=np.uint8)
    base[..., 0] = x
    base[..., 1] = y
    base[..., 2] = x * 0.5 + y * 0.5
    return base


def frame_pattern(index: int, width: int, height: int) -> Any:
    """The RGB array of frame `index` (uint8, height x width x 3)."""
    import numpy as np

    frame = np.roll(_base_pattern(width, height), index * 7, axis=1)
    frame[..., 2] += np.uint8(index * 11 % 256)
    bar = (index * 13) % max(width - width // 10, 1)
    frame[:, bar : bar + max(width // 10, 1)] = 255
    block = max(width // (BITS + 2), 2)
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[:block, (bit + 1) * block : (bit + 2) * block] = value
    return frame


def read_frame_number(rgb: Any) -> int:
    """Read back the frame number that `frame_pattern` wrote (tolerates compression)."""
    width = rgb.shape[1]
    block = max(width // (BITS + 2), 2)
    number = 0
    for bit in range(BITS):
        patch = rgb[
            block // 4 : block * 3 // 4,
            (bit + 1) * block + block // 4 : (bit + 2) * block - block // 4,
        ]
        if patch.mean() > 127:
            number |= 1 << bit
    return number


def make_video(
    path: str | Path,
    frames: int = 48,
    fps: float = 24,
    size: tuple[int, int] = (160, 120),
    codec: str | None = None,
    gop: int | None = None,
    bframes: int | None = None,
    rotation: int = 0,
    frame_times: list[float] | None = None,
    audio: bool = False,
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    lead_in: int = 0,
    keyframe_flags: bool = True,
    cover: bool = False,
    format: str | None = None,
    container_options: dict[str, str] | None = None,
) -> Path:
    """Write a video; `frame_times` (seconds) makes a variable-frame-rate one.

    The container follows the suffix (`.ts`, `.mpg`, `.h264` included) or `format`.
    `lead_in` frames are written before time 0 (an MP4 edit list then hides them);
    `keyframe_flags=False` clears every packet's keyframe flag; `cover` puts a small
    thumbnail stream (a single frame) before the real one; `container_options` go to the
    muxer (e.g. `{"movflags": "+faststart"}`).
    """
    import av
    import numpy as np

    path = Path(path)
    codec = codec or CONTAINER_CODECS.get(path.suffix.lower(), "libx264")
    width, height = size
    time_base = Fraction(1, 1000) if frame_times else Fraction(1, round(fps * 1000)) * 1000
    with av.open(str(path), "w", format=format, options=container_options or {}) as container:
        thumb = _add_cover(container, width, height) if cover else None
        stream = _video_stream(container, codec, fps, size, pix_fmt, gop, bframes, options)
        if frame_times:
            stream.codec_context.time_base = time_base
            stream.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        if thumb is not None:
            _write_cover(container, thumb)
        timing = (frame_times, time_base, lead_in)
        _write_frames(container, stream, frames, size, pix_fmt, timing, keyframe_flags)
        if audio_stream is not None:
            _write_silence(container, audio_stream, frames / fps, np)
    return path


def _write_frames(
    container: Any,
    stream: Any,
    frames: int,
    size: tuple[int, int],
    pix_fmt: str,
    timing: tuple[list[float] | None, Fraction, int],
    keyframe_flags: bool,
) -> None:
    """Encode and mux `frames` numbered frames (`timing`: the frame times, their time base,
    the frames written before time 0), the encoder flushed at the end."""
    import av

    frame_times, time_base, lead_in = timing
    width, height = size

    def mux(packets: list[Any]) -> None:
        for packet in packets:
            if not keyframe_flags:
                packet.is_keyframe = False
            container.mux(packet)

    for i in range(frames):
        image = av.VideoFrame.from_ndarray(frame_pattern(i, width, height), format="rgb24")
        image = image.reformat(format=pix_fmt)
        if frame_times:
            image.pts = round(frame_times[i] / time_base)
            image.time_base = time_base
        elif lead_in:
            image.pts = i - lead_in
        mux(stream.encode(image))
    mux(stream.encode())


def _video_stream(
    container: Any,
    codec: str,
    fps: float,
    size: tuple[int, int],
    pix_fmt: str,
    gop: int | None,
    bframes: int | None,
    options: dict[str, str] | None,
) -> Any:
    """The video stream, its encoder set up (fast presets; a fixed GOP when `gop` is given)."""
    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = size
    stream.pix_fmt = pix_fmt
    if gop:
        stream.codec_context.gop_size = gop
    opts = dict(options or {})
    if codec == "libx264":
        opts.setdefault("preset", "ultrafast" if max(size) > 640 else "fast")
        if gop:
            opts.setdefault("x264-params", f"keyint={gop}:min-keyint={gop}:scenecut=0")
    elif codec == "libvpx-vp9":
        opts.setdefault("deadline", "realtime")
        opts.setdefault("cpu-used", "8")
    if bframes is not None:
        stream.codec_context.max_b_frames = bframes
    stream.codec_context.options = opts
    return stream


def _add_cover(container: Any, width: int, height: int) -> Any:
    """A one-frame thumbnail stream, marked as an attached picture where the muxer allows."""
    import av

    stream = container.add_stream("mjpeg", rate=1)
    stream.width, stream.height = max(width // 4 * 2, 16), max(height // 4 * 2, 16)
    stream.pix_fmt = "yuvj420p"
    stream.disposition = av.stream.Disposition.attached_pic
    return stream


def _write_cover(container: Any, stream: Any) -> None:
    import av
    import numpy as np

    array = np.full((stream.height, stream.width, 3), 200, dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(array, format="rgb24")
    for packet in [*stream.encode(frame), *stream.encode()]:
        container.mux(packet)


def _write_silence(container: Any, stream: Any, seconds: float, np: Any) -> None:
    import av

    samples = int(seconds * stream.rate)
    chunk = 1024
    for start in range(0, samples, chunk):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, chunk), dtype=np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = stream.rate
        frame.pts = start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """Write a file with one audio stream and no video (e.g. `.m4a`)."""
    import av
    import numpy as np

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        _write_silence(container, stream, seconds, np)
    return path


AUDIO_CODECS = {
    ".mp4": "aac",
    ".m4a": "aac",
    ".mov": "aac",
    ".mkv": "flac",
    ".webm": "libopus",
    ".ts": "aac",
    ".mp3": "libmp3lame",
    ".wav": "pcm_s16le",
    ".flac": "flac",
    ".ogg": "libopus",
    ".opus": "libopus",
}
Tone = tuple[float, float, float]  # (at, seconds, hz): a sine burst of amplitude 0.5


def _audio_stream(container: Any, spec: dict[str, Any]) -> Any:
    """An audio stream of `spec`'s codec, rate and layout (its disposition and language)."""
    import av

    stream = container.add_stream(spec["codec"], rate=spec["rate"], layout=spec["layout"])
    if "disposition" in spec:
        stream.disposition = getattr(av.stream.Disposition, spec["disposition"])
    if spec.get("language"):
        stream.metadata["language"] = spec["language"]
    return stream


def make_audio(
    path: str | Path,
    tones: list[Tone] | tuple[Tone, ...] = (),
    *,
    seconds: float = 3.0,
    rate: int = 16000,
    layout: str = "mono",
    codec: str | None = None,
    start: float = 0.0,
    channel: int | None = None,
    streams: list[dict[str, Any]] | None = None,
    video: float | None = None,
    corrupt: tuple[int, ...] = (),
    format: str | None = None,
) -> Path:
    """Write a file with audio (and, with `video` seconds, a small video stream from 0 s).

    Each stream lasts `seconds` from `start` (on the file's clock), holds `tones` (times on
    the file's clock) on every channel, or only on `channel`, and silence elsewhere. `streams`
    makes several: one dict each, whose keys (`tones`, `seconds`, `rate`, `layout`, `codec`,
    `start`, `channel`, `corrupt`, and `disposition` (a name such as "default" or
    "comment"), `language`) override the arguments. `corrupt` packet numbers get garbage for
    a payload. The codec follows the suffix unless given."""
    import av

    path = Path(path)
    base = {
        "tones": list(tones),
        "seconds": seconds,
        "rate": rate,
        "layout": layout,
        "codec": codec or AUDIO_CODECS.get(path.suffix.lower(), "aac"),
        "start": start,
        "channel": channel,
        "corrupt": corrupt,
    }
    specs = [{**base, **spec} for spec in (streams or [{}])]
    with av.open(str(path), "w", format=format) as container:
        picture = None
        if video:
            codec = CONTAINER_CODECS.get(path.suffix.lower(), "libx264")
            picture = _video_stream(container, codec, 10, (64, 48), "yuv420p", None, None, None)
        added = [_audio_stream(container, spec) for spec in specs]
        if picture is not None and video:
            _write_video_frames(container, picture, int(video * 10))
        for stream, spec in zip(added, specs):
            _write_tones(container, stream, spec)
    return path


def _write_video_frames(container: Any, stream: Any, count: int) -> None:
    import av

    for i in range(count):
        image = av.VideoFrame.from_ndarray(frame_pattern(i, 64, 48), format="rgb24")
        for packet in stream.encode(image.reformat(format="yuv420p")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)


def tone_signal(tones: list[Tone], first: int, count: int, rate: int) -> Any:
    """Samples `first` to `first + count` (at `rate`, sample 0 at 0 s) of the tone bursts."""
    import numpy as np

    times = (first + np.arange(count)) / rate
    signal = np.zeros(count, dtype=np.float32)
    for at, length, hz in tones:
        inside = (times >= at) & (times < at + length)
        signal[inside] = 0.5 * np.sin(2 * np.pi * hz * (times[inside] - at))
    return signal


def _write_tones(container: Any, stream: Any, spec: dict[str, Any]) -> None:
    from fractions import Fraction

    import av
    import numpy as np

    rate = spec["rate"]
    channels = stream.layout.nb_channels
    first = round(spec["start"] * rate)
    total = round(spec["seconds"] * rate)
    chunk = 1024
    corrupt = set(spec["corrupt"])
    written = 0

    def mux(packets: list[Any]) -> None:
        nonlocal written
        for packet in packets:
            if written in corrupt:
                garbage = av.Packet(bytes(range(256)) * max(1, packet.size // 256 + 1))
                garbage.pts, garbage.dts, garbage.stream = packet.pts, packet.dts, packet.stream
                garbage.time_base = packet.time_base
                packet = garbage
            written += 1
            container.mux(packet)

    for offset in range(0, total, chunk):
        count = min(chunk, total - offset)
        signal = tone_signal(spec["tones"], first + offset, count, rate)
        planes = np.zeros((channels, count), dtype=np.float32)
        if spec["channel"] is None:
            planes[:] = signal
        else:
            planes[spec["channel"]] = signal
        frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=stream.layout.name)
        frame.sample_rate = rate
        frame.pts = first + offset
        frame.time_base = Fraction(1, rate)
        mux(stream.encode(frame))
    mux(stream.encode())


def _write_h264(path: str | Path, frames: Any, fps: float, size: tuple[int, int]) -> Path:
    """`frames` (RGB arrays of `size`) written as an H.264 video, a keyframe every 2 s."""
    import av

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"preset": "veryfast", "g": str(round(2 * fps))}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def make_square_video(
    path: str | Path,
    shown: tuple[float, float],
    colour: tuple[int, int, int] = (220, 30, 30),
    seconds: float = 12.0,
    fps: float = 24,
    size: tuple[int, int] = (320, 240),
) -> Path:
    """A grey H.264 video showing a square of `colour` over the seconds `shown` (start, end):
    content whose time is known, for grounding and retrieval checks."""
    import numpy as np

    width, height = size

    def frames() -> Iterator[Any]:
        for k in range(round(seconds * fps)):
            frame = np.full((height, width, 3), 96, dtype=np.uint8)
            if shown[0] <= k / fps < shown[1]:
                frame[height // 3 : 2 * height // 3, width * 2 // 5 : width * 3 // 5] = colour
            yield frame

    return _write_h264(path, frames(), fps, size)


def make_scenes_video(
    path: str | Path,
    scenes: list[tuple[float, tuple[int, int, int], tuple[int, int, int]]],
    fps: float = 24,
    size: tuple[int, int] = (320, 240),
) -> Path:
    """An H.264 video of scenes, `(seconds, background, square)` each: a whole-frame colour
    with a square of another in the middle, cut from one scene to the next, so the video's
    shots and the colours each shows are known (for retrieval; `vidtt.testing.scenes` makes
    lifelike shots and transitions, for shot detection)."""
    import numpy as np

    width, height = size

    def frames() -> Iterator[Any]:
        for seconds, background, square in scenes:
            frame = np.empty((height, width, 3), dtype=np.uint8)
            frame[:] = background
            frame[height // 3 : 2 * height // 3, width // 3 : 2 * width // 3] = square
            for _ in range(round(seconds * fps)):
                yield frame

    return _write_h264(path, frames(), fps, size)
