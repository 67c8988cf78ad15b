"""The page's strip (`POST /v1/frames`) and the operator routes, measured on a real server.

    python benchmarks/page.py [--rounds 15] [--frames 8] [--requests 400] [--asks 8]

Starts `vidtt serve`'s app (`create_app`, `uvicorn_server`) on 127.0.0.1 with the tiny
llava-interleave-shaped model and 480p videos of benchmarks/throughput.py, then:

  (a) the strip: `POST /v1/frames` for `--frames` uniform frames of a video (160 px JPEG
      thumbnails, times and the token plan), median and p90 of `--rounds` rounds over four
      videos (the first round warms up) with the frame cache off, against the floor: what an
      expert writes by hand for the same frames: PyAV decodes the file (threads on) and keeps
      those indices, PIL scales each to 160 px and encodes it as a JPEG data: URL, in the same
      process; and the floor that seeks (to the keyframe before each frame a second or more
      past the last, decoding on to nearer ones), checked to give the same JPEGs. Then the
      same requests with the frame cache on (the default), as the page sends them again when
      a question is asked;
  (b) the metrics middleware: `GET /health` from 8 threads, `--requests` in all, through the
      app as served against the same app with `RequestMetrics` taken out, requests/s of both;
  (c) a scrape: `GET /metrics` after those requests, its size and median time;
  (d) a page session on one large file (854x480, 16 s, lossless H.264: about 27 MB): `--asks`
      strip requests, the sampling changed each time (4 to 11 frames), with the file sent as
      a data: URL in every request (what the page did before uploads; base64 made once, not
      timed) against the file uploaded once (`POST /v1/uploads`) and named as upload:ID;
      the seconds and the bytes sent of each.

Printed: each measurement, the ratio to its peer, and the server's settings.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def served(pipeline: Any, folder: Path, metrics: bool = True) -> Any:
    """An in-process server (as `vidtt serve` runs it) and its base URL; without `metrics`,
    the app's request-metrics middleware is left out (the peer of (b))."""
    import uvicorn

    from vidtt.serve.app import ServeSettings, create_app, uvicorn_server
    from vidtt.serve.metrics import RequestMetrics
    from vidtt.serve.protocol import ServeLimits
    from vidtt.testing.streams import free_port

    settings = ServeSettings(limits=ServeLimits(allowed_local_media_path=folder))
    app = create_app(pipeline, settings)
    if not metrics:
        app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestMetrics]
    port = free_port()
    server = uvicorn_server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_up(base)
    return server, thread, base


def wait_up(base: str, seconds: float = 120) -> None:
    import httpx

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the server at {base} did not come up")


def stop(server: Any, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(30)


def thumb(frame: Any, side: int = 160) -> str:
    """A decoded frame as the page's thumbnail: scaled to `side` px, a JPEG data: URL."""
    from PIL import Image

    image = frame.to_image()
    scale = side / max(image.size)
    size = (round(image.width * scale), round(image.height * scale))
    buffer = io.BytesIO()
    image.resize(size, Image.Resampling.BICUBIC).save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def floor_strip(path: Path, indices: list[int]) -> list[str]:
    """The same frames as thumbnails, by hand: one decode pass up to the last, PIL, JPEG."""
    import av

    wanted, out = set(indices), {}
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for n, frame in enumerate(container.decode(stream)):
            if n in wanted:
                out[n] = thumb(frame)
            if n >= max(indices):
                break
    return [out[i] for i in indices]


def floor_seeking(path: Path, indices: list[int]) -> list[str]:
    """The same, by hand with seeks: a frame a second or more past the last one decoded is
    reached by seeking to the keyframe before it (a constant frame rate: index / fps is its
    time), a nearer one by decoding on."""
    import av

    out = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate, base, start = stream.average_rate, stream.time_base, stream.start_time or 0
        frames, at = None, -(10**9)
        for index in indices:
            target = start + round(index / rate / base)
            if frames is None or index - at >= rate:
                container.seek(target, stream=stream, backward=True)
                frames = container.decode(stream)
            for frame in frames:
                if frame.pts is not None and frame.pts >= target:
                    out.append(thumb(frame))
                    at = index
                    break
    return out


def strip(
    base: str, paths: list[Path], rounds: int, frames: int
) -> tuple[list[float], list[float], list[float]]:
    """(a): seconds of `POST /v1/frames`, of the decode-pass floor and of the seeking floor,
    per round after the first (which warms all three up)."""
    import httpx

    ours, floor, seeking = [], [], []
    for n in range(rounds + 1):
        path = paths[n % len(paths)]
        started = time.perf_counter()
        body = {"video": path.name, "num_frames": frames, "question": "What happens?"}
        response = httpx.post(f"{base}/v1/frames", json=body, timeout=120)
        seconds = time.perf_counter() - started
        assert response.status_code == 200, response.text
        indices = [f["index"] for f in response.json()["frames"]]
        started = time.perf_counter()
        thumbs = floor_strip(path, indices)
        by_hand = time.perf_counter() - started
        started = time.perf_counter()
        sought = floor_seeking(path, indices)
        by_seeking = time.perf_counter() - started
        assert sought == thumbs and len(thumbs) == frames  # the same frames, the same JPEGs
        if n:
            ours.append(seconds)
            floor.append(by_hand)
            seeking.append(by_seeking)
    return ours, floor, seeking


def hammer(base: str, requests: int, clients: int = 8) -> float:
    """Requests per second of `GET /health` from `clients` threads."""
    import httpx

    def one(client: httpx.Client) -> None:
        assert client.get(f"{base}/health").status_code == 200

    with httpx.Client(timeout=30) as warm:
        for _ in range(20):
            one(warm)
    local = threading.local()

    def call(_: int) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
        one(local.client)

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(call, range(requests)))
    return requests / (time.perf_counter() - started)


def scrape(base: str, times: int = 20) -> tuple[float, int]:
    import httpx

    seconds, size = [], 0
    with httpx.Client(timeout=30) as client:
        for _ in range(times):
            started = time.perf_counter()
            response = client.get(f"{base}/metrics")
            seconds.append(time.perf_counter() - started)
            size = len(response.content)
    return statistics.median(seconds), size


def large_video() -> Path:
    from throughput import DATA

    from vidtt.testing import make_video

    path = DATA / "page-large.mp4"
    if not path.exists():
        options = {"preset": "ultrafast", "qp": "0"}  # lossless: a large file
        make_video(path, frames=480, fps=30, size=(854, 480), gop=60, options=options)
    return path


def session(base: str, path: Path, asks: int) -> dict[str, tuple[float, int]]:
    """(d): seconds and bytes sent for `asks` strip requests of one file, inline or uploaded."""
    import httpx

    data = path.read_bytes()
    inline = f"data:video/mp4;base64,{base64.b64encode(data).decode()}"
    json_type = {"Content-Type": "application/json"}

    def asked(client: httpx.Client, video: str) -> int:
        sent = 0
        for n in range(asks):
            body = json.dumps({"video": video, "num_frames": 4 + n % 8}).encode()
            response = client.post(f"{base}/v1/frames", content=body, headers=json_type)
            assert response.status_code == 200, response.text
            sent += len(body)
        return sent

    out = {}
    with httpx.Client(timeout=300) as client:
        started = time.perf_counter()
        sent = asked(client, inline)
        out["data: URL in every request"] = (time.perf_counter() - started, sent)
        started = time.perf_counter()
        answer = client.post(
            f"{base}/v1/uploads", content=data, headers={"Content-Type": "video/mp4"}
        )
        assert answer.status_code == 201, answer.text
        sent = len(data) + asked(client, answer.json()["url"])
        out["uploaded once, upload:ID"] = (time.perf_counter() - started, sent)
    return out


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]


def main() -> int:
    from throughput import make_assets

    import vidtt

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--asks", type=int, default=8)
    args = parser.parse_args()

    from vidtt.media.frame_cache import FrameCache

    paths, tiny = make_assets(4)
    options = {"max_side": 384}
    cold = vidtt.Pipeline(
        model=str(tiny), backend="cpu", sampler_options=options, cache=FrameCache(0)
    )
    pipe = vidtt.Pipeline(model=str(tiny), backend="cpu", sampler_options=options)
    print(f"model: {tiny} (tiny llava-interleave shape), videos: 854x480 H.264, 8 s at 30 fps")
    print(f"command: python benchmarks/page.py --rounds {args.rounds} --frames {args.frames} "
          f"--requests {args.requests} --asks {args.asks}")  # fmt: skip

    server, thread, base = served(cold, paths[0].parent)
    try:
        ours, floor, seeking = strip(base, paths, args.rounds, args.frames)
    finally:
        stop(server, thread)
    server, thread, base = served(pipe, paths[0].parent)
    try:
        strip(base, paths, 3, args.frames)  # each video's frames cached
        warm = strip(base, paths, args.rounds, args.frames)[0]
        with_metrics = hammer(base, args.requests)
        scrape_seconds, scrape_bytes = scrape(base)
        large = large_video()
        sessions = session(base, large, args.asks)
    finally:
        stop(server, thread)
    server, thread, base = served(pipe, paths[0].parent, metrics=False)
    try:
        without = hammer(base, args.requests)
    finally:
        stop(server, thread)

    mine, hand = statistics.median(ours), statistics.median(floor)
    print(f"\n(a) the strip, {args.frames} frames as 160 px JPEGs, {args.rounds} rounds:")
    print(f"    POST /v1/frames   median {mine * 1000:7.1f} ms   p90 {p90(ours) * 1000:7.1f} ms"
          "   (HTTP, sampling, thumbnails, the token plan)")  # fmt: skip
    print(f"    floor by hand     median {hand * 1000:7.1f} ms   p90 {p90(floor) * 1000:7.1f} ms"
          "   (PyAV decode pass, PIL, JPEG; in process)")  # fmt: skip
    sought = statistics.median(seeking)
    print(f"    floor, seeking    median {sought * 1000:7.1f} ms   "
          f"p90 {p90(seeking) * 1000:7.1f} ms   "
          "(seeking to the keyframe before each frame)")  # fmt: skip
    print(f"    ratio             {mine / hand:.2f}x the decode-pass floor, "
          f"{mine / sought:.2f}x the seeking floor")  # fmt: skip
    print(f"    cached (page asks again)  median {statistics.median(warm) * 1000:7.1f} ms")
    print(f"\n(b) GET /health, {args.requests} requests from 8 threads:")
    print(f"    with the metrics middleware     {with_metrics:8.1f} requests/s")
    print(f"    without it (the same app)       {without:8.1f} requests/s")
    print(f"    ratio                           {with_metrics / without:.2f}x")
    print(f"\n(c) GET /metrics: {scrape_bytes:,} bytes, median {scrape_seconds * 1000:.1f} ms")
    size = large.stat().st_size
    print(f"\n(d) {args.asks} strip requests of one {size / (1 << 20):.1f} MB file:")
    for name, (seconds, sent) in sessions.items():
        print(f"    {name:28} {seconds:7.2f} s   {sent / (1 << 20):7.1f} MB sent")
    (inline, inline_sent), (uploaded, uploaded_sent) = sessions.values()
    print(
        f"    ratio                        {uploaded / inline:.2f}x the time, "
        f"{uploaded_sent / inline_sent:.2f}x the bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
