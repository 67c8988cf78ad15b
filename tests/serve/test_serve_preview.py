"""The page's routes as an API user sees them: `POST /v1/frames` (the frames a chat completion
with the same fields samples, as JPEG thumbnails, with shots and the token plan) and
`GET /v1/ui/config`, on in-process servers on 127.0.0.1 driven by httpx."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import random
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, http_files, moved_temp, serving, tiny_pipeline  # noqa: E402

pytestmark = pytest.mark.slow

KEY = "preview-key-123"
MAX_FRAMES = 16  # the main server's frame limit per request
SMALL_BODY = 4096  # the second server's body limit
QUESTION = "What happens?"
COLOURS = [(220, 40, 40), (40, 200, 60), (50, 60, 220)]  # the shots of cuts.mp4
SHOT = 24  # frames a shot of cuts.mp4 (one second)


class Client:
    """One running server: its base URL and app; requests with (or without) the key."""

    def __init__(self, base: str, app: Any, key: str | None) -> None:
        self.base, self.app, self.key = base, app, key

    def headers(self, key: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def post(self, path: str, body: Any = None, key: Any = "", **kwargs: Any) -> Any:
        key = self.key if key == "" else key
        return httpx.post(
            self.base + path, json=body, headers=self.headers(key), timeout=60, **kwargs
        )

    def get(self, path: str, key: Any = "") -> Any:
        key = self.key if key == "" else key
        return httpx.get(self.base + path, headers=self.headers(key), timeout=30)

    def frames(self, video: str = "clip.mp4", **fields: Any) -> dict[str, Any]:
        response = self.post("/v1/frames", {"video": video, **fields})
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert answer["object"] == "frames"
        return answer

    def chat(self, video: str = "clip.mp4", key: Any = "", **fields: Any) -> Any:
        """A chat completion about `video` with `fields`, as the frames request sends them."""
        content = [{"type": "video", "video": video}, {"type": "text", "text": QUESTION}]
        body = {"messages": [{"role": "user", "content": content}], **fields}
        return self.post("/v1/chat/completions", body, key=key)


@contextlib.contextmanager
def running(pipeline: Any, **settings: Any) -> Iterator[Client]:
    with serving(pipeline, **settings) as (base, app):
        yield Client(base, app, settings.get("api_key"))


def make_cuts(path: Path) -> Path:
    """Three one-second shots of solid colours (`COLOURS`), hard cuts between them."""
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for colour in COLOURS:
            array = np.empty((120, 160, 3), dtype=np.uint8)
            array[:] = colour
            for _ in range(SHOT):
                frame = av.VideoFrame.from_ndarray(array, format="rgb24").reformat(format="yuv420p")
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with moved_temp(tmp_path_factory, "server-tmp") as folder:
        yield folder


@pytest.fixture(scope="module")
def media(videos: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The allowed folder: the 160x120 clip (48 frames, 24 fps), a 320x240 one, the cuts, a
    text file, and a link that leads out to a video outside."""
    from vidtt.testing import make_video

    folder = Path(os.path.realpath(tmp_path_factory.mktemp("preview-media")))
    (folder / "clip.mp4").write_bytes(videos["h264"].read_bytes())
    make_video(folder / "big.mp4", frames=24, size=(320, 240))
    make_cuts(folder / "cuts.mp4")
    (folder / "notes.txt").write_text("hello, this is not a video\n")
    outside = tmp_path_factory.mktemp("preview-outside") / "secret.mp4"
    outside.write_bytes(videos["h264"].read_bytes())
    (folder / "escape.mp4").symlink_to(outside)
    return folder


@pytest.fixture(scope="module")
def pipe(llava: Any) -> Any:
    return tiny_pipeline(llava)


@pytest.fixture(scope="module")
def served(pipe: Any, media: Path, temp: Path) -> Iterator[Client]:
    """The main server: a key, the media folder, at most 16 frames a request."""
    from vidtt.serve.protocol import ServeLimits

    limits = ServeLimits(allowed_local_media_path=media, max_frames=MAX_FRAMES)
    with running(pipe, api_key=KEY, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def small(llava: Any, temp: Path) -> Iterator[Client]:
    """A second server: no key, no local media, a 4 KB body limit; it fetches from 127.0.0.1."""
    with running(
        tiny_pipeline(llava, limits={"block_private_addresses": False}), max_body_bytes=SMALL_BODY
    ) as client:
        yield client


@pytest.fixture(scope="module")
def files(media: Path) -> Iterator[str]:
    """An http server on 127.0.0.1 serving the media folder."""
    with http_files(media) as base:
        yield base


def data_url(data: bytes, mime: str = "video/mp4") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def png() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def decoded(frame: dict[str, Any]) -> Any:
    """A frame's thumbnail as a PIL image (checked to be a JPEG data: URL)."""
    from PIL import Image

    prefix = "data:image/jpeg;base64,"
    assert frame["image"].startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(frame["image"][len(prefix) :], validate=True)))
    assert image.format == "JPEG"
    image.load()
    return image


def indices(answer: dict[str, Any]) -> list[int]:
    return [f["index"] for f in answer["frames"]]


# -- the key, and mistakes -------------------------------------------------------------------
@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_both_routes_need_the_key(served: Client, key: str | None) -> None:
    words = ("Bearer",) if key is None else ("incorrect",)
    chat = error_of(served.chat(key=key), 401, *words)
    assert chat["code"] == "invalid_api_key"
    for response in (
        served.post("/v1/frames", {"video": "clip.mp4"}, key=key),
        served.post("/v1/frames", None, key=key, content=b"{not json"),  # the key comes first
        served.get("/v1/ui/config", key=key),
    ):
        assert error_of(response, 401, *words) == chat


BAD = [  # (body, the field named, words of the message)
    ([1, 2], None, ("JSON object",)),
    ({}, "video", ("video must be a URL string",)),
    ({"video": 5}, "video", ("video must be a URL string",)),
    ({"video": ""}, "video", ("video must be a URL string",)),
    ({"video": "clip.mp4", "num_frame": 3}, "num_frame", ("did you mean 'num_frames'",)),
    ({"video": "clip.mp4", "thumbsize": 64}, "thumbsize", ("did you mean 'thumb_size'",)),
    ({"video": "clip.mp4", "messages": []}, "messages", ("unrecognized request argument",)),
    ({"video": "clip.mp4", "thumb_size": 31}, "thumb_size", ("between 32 and 512",)),
    ({"video": "clip.mp4", "thumb_size": 513}, "thumb_size", ("between 32 and 512",)),
    ({"video": "clip.mp4", "thumb_size": True}, "thumb_size", ("integer",)),
    ({"video": "clip.mp4", "thumb_size": "64"}, "thumb_size", ("integer",)),
    ({"video": "clip.mp4", "thumb_size": 64.0}, "thumb_size", ("integer",)),
    ({"video": "clip.mp4", "question": 5}, "question", ("question must be a string",)),
    ({"video": "clip.mp4", "question": ["a"]}, "question", ("question must be a string",)),
    ({"video": "clip.mp4", "sampler": "nope"}, "sampler", ("unknown sampler 'nope'",)),
    ({"video": "clip.mp4", "sampler": 3}, "sampler", ("sampler must be a string",)),
    ({"video": "clip.mp4", "num_frames": 100}, "num_frames", ("limit of 16 frames",)),
    ({"video": "clip.mp4", "start": 10}, "start", ("start=10",)),
    ({"video": "clip.mp4", "max_tokens": 0}, "max_tokens", ("max_tokens",)),
    ({"video": "clip.mp4", "timestamps": "yes"}, "timestamps", ("timestamps",)),
]


@pytest.mark.parametrize(("body", "param", "words"), BAD, ids=lambda x: str(x)[:40])
def test_mistakes_are_400_naming_the_field(
    served: Client, body: Any, param: str | None, words: tuple[str, ...]
) -> None:
    error = error_of(served.post("/v1/frames", body), 400, *words)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert "messages[" not in error["message"]


def test_invalid_json_and_unknown_model(served: Client) -> None:
    error_of(served.post("/v1/frames", None, content=b"{not json"), 400, "not valid JSON")
    error = error_of(served.post("/v1/frames", {"video": "clip.mp4", "model": "gpt-4o"}), 404)
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "gpt-4o" in error["message"]
    assert served.frames(model=served.app.state.vidtt.name)["frames"]  # its own name is fine


MEDIA = [  # (video, code, words): what loading the video finds
    ("http://127.0.0.1:9/x.mp4", "source_error", ("private",)),
    ("ftp://example.com/x.mp4", "invalid_url", ("scheme",)),
    (data_url(random.Random(7).randbytes(3000)), "decode_error", ("not a readable video",)),
    (data_url(png()), "decode_error", ("is an image, not a video",)),
    (data_url(png(), "image/png"), None, ("image/png",)),
    (data_url(b"plain text", "text/plain"), None, ("text/plain",)),
    ("data:video/mp4;base64,@@@", None, ("base64",)),
    ("notes.txt", "decode_error", ("not a readable video",)),
    ("missing.mp4", None, ("no such file",)),
    ("/etc/passwd", "local_path_not_allowed", ("outside",)),
    ("../preview-outside0/secret.mp4", "local_path_not_allowed", ("outside",)),
    ("escape.mp4", "local_path_not_allowed", ("outside",)),
    ("file:///etc/hosts", "local_path_not_allowed", ("outside",)),
]


@pytest.mark.parametrize(("video", "code", "words"), MEDIA, ids=lambda x: str(x)[:30])
def test_media_mistakes_name_video_as_chat_completions_do(
    served: Client, video: str, code: str | None, words: tuple[str, ...]
) -> None:
    error = error_of(served.post("/v1/frames", {"video": video}), 400, *words)
    assert error["param"] == "video" and error["code"] == code
    chat = error_of(served.chat(video), 400, *words)
    assert chat["code"] == code
    assert error["message"] == chat["message"].replace("messages[0].content[0].video", "video")


def test_frames_over_the_limit_once_sampled_name_video(served: Client) -> None:
    """48 frames at fps 24, over the 16 allowed: found only once the video is sampled."""
    fields = {"sampler": "interval", "fps": 24}
    error = error_of(served.post("/v1/frames", {"video": "clip.mp4", **fields}), 400, "48 frames")
    assert error["code"] == "too_many_frames" and error["param"] == "video"
    chat = error_of(served.chat(**fields), 400)
    assert chat["code"] == "too_many_frames" and chat["message"] == error["message"]
    assert len(served.frames(sampler="interval", fps=8)["frames"]) == 16  # at the limit: fine


def test_body_over_the_limit_is_413(small: Client) -> None:
    video = data_url(b"\0" * SMALL_BODY)
    error = error_of(small.post("/v1/frames", {"video": video}), 413, f"{SMALL_BODY} bytes")
    assert error["code"] == "request_too_large"
    error_of(small.chat(video), 413)  # as chat completions answer it
    assert small.post("/v1/frames", {"video": "x" * (SMALL_BODY // 2)}).status_code == 400


def test_local_paths_refused_where_none_are_served(small: Client, media: Path) -> None:
    for video in ("clip.mp4", str(media / "clip.mp4"), f"file://{media / 'clip.mp4'}"):
        error = error_of(small.post("/v1/frames", {"video": video}), 400, "local files")
        assert error["code"] == "local_path_not_allowed" and error["param"] == "video"


# -- what the frames are ------------------------------------------------------------------------
def test_thumbnails_are_the_frames_as_jpegs(served: Client) -> None:
    import numpy as np

    from vidtt.testing.videos import read_frame_number

    full = served.frames(thumb_size=512)  # 512: above the video's 160x120, never upscaled
    assert len(full["frames"]) == 4
    for frame in full["frames"]:
        image = decoded(frame)
        assert image.size == (frame["width"], frame["height"]) == (160, 120)
        assert read_frame_number(np.asarray(image.convert("RGB"))) == frame["index"]
    small = served.frames(thumb_size=64)
    assert indices(small) == indices(full)
    assert [decoded(f).size for f in small["frames"]] == [(64, 48)] * 4
    assert all((f["width"], f["height"]) == (64, 48) for f in small["frames"])
    big = served.frames("big.mp4")  # 320x240 at the default 160
    assert [decoded(f).size for f in big["frames"]] == [(160, 120)] * 4
    assert big["video"]["width"] == 320 and big["plan"]["frame_size"] == [320, 240]
    least = served.frames(thumb_size=32)
    assert [decoded(f).size for f in least["frames"]] == [(32, 24)] * 4


def test_times_follow_the_indices_and_fps(served: Client) -> None:
    answer = served.frames(num_frames=6)
    fps = answer["video"]["fps"]
    assert fps == 24 and answer["video"]["frame_count"] == 48
    assert indices(answer) == sorted(set(indices(answer))) and len(answer["frames"]) == 6
    for frame in answer["frames"]:
        assert frame["time"] == round(frame["index"] / fps, 3)


def test_sampling_fields_change_the_frames(served: Client) -> None:
    plain = served.frames()
    assert plain["sampler"] == "uniform" and plain["options"]["num_frames"] == 4
    assert len(plain["frames"]) == 4
    six = served.frames(num_frames=6)
    assert len(six["frames"]) == 6 and six["options"]["num_frames"] == 6
    assert served.frames(sampler_options={"num_frames": 3})["options"]["num_frames"] == 3
    assert len(served.frames(sampler_options={"num_frames": 3})["frames"]) == 3
    ranged = served.frames(start=0.5, end=1.5)
    times = [f["time"] for f in ranged["frames"]]
    assert len(times) == 4 and all(0.5 <= t <= 1.5 for t in times)
    assert times != [f["time"] for f in plain["frames"]]
    rate = served.frames(sampler="interval", fps=2)
    assert rate["sampler"] == "interval" and rate["options"]["fps"] == 2
    gaps = {round(b["time"] - a["time"], 3) for a, b in zip(rate["frames"], rate["frames"][1:])}
    assert gaps == {0.5} and len(rate["frames"]) == 4
    assert served.frames(timestamps=True)["timestamps"] is True
    assert plain["timestamps"] is False


def frames_fields() -> list[dict[str, Any]]:
    return [
        {},
        {"num_frames": 6},
        {"start": 0.4, "end": 1.2, "num_frames": 3},
        {"sampler": "interval", "fps": 3},
        {"sampler": "scene", "max_visual_tokens": 40},
        {"max_tokens": 3},
    ]


@pytest.mark.parametrize("fields", frames_fields(), ids=str)
def test_frames_and_plan_are_what_a_chat_completion_uses(
    served: Client, fields: dict[str, Any]
) -> None:
    answer = served.frames(question=QUESTION, **fields)
    response = served.chat(**fields)
    assert response.status_code == 200, response.text
    body = response.json()
    [used] = body["vidtt"]["videos"]
    assert indices(answer) == used["indices"]
    assert [f["time"] for f in answer["frames"]] == used["timestamps"]
    assert answer["sampler"] == used["sampler"] and answer["frames_rule"] == used["rule"]
    plan, usage = answer["plan"], body["usage"]
    assert plan["visual_tokens"] == usage["visual_tokens"]
    assert plan["prompt_tokens"] == usage["prompt_tokens"]
    assert usage["completion_tokens"] <= plan["max_new_tokens"] == fields.get("max_tokens", 4)


def test_plan_adds_up(served: Client, pipe: Any) -> None:
    for answer in (served.frames(), served.frames(num_frames=6, max_tokens=7, question="Why?")):
        plan = answer["plan"]
        assert plan["frames"] == len(answer["frames"])
        assert plan["frames"] * plan["tokens_per_frame"] == plan["visual_tokens"]
        assert plan["video_tokens"] >= plan["visual_tokens"]
        assert plan["prompt_tokens"] == plan["text_tokens"] + plan["video_tokens"]
        assert plan["total"] == plan["prompt_tokens"] + plan["max_new_tokens"]
        assert plan["context"] == pipe.engine.context_size() and plan["total"] < plan["context"]
        assert plan["fits"] is True and plan["budget"] is None
        assert f"{plan['total']:,} of the {plan['context']:,}-token context" in plan["reason"]
        assert answer["warnings"] == []
    asked = served.frames(num_frames=6, max_tokens=7, question="Why?")["plan"]
    assert asked["max_new_tokens"] == 7 and asked["frames"] == 6
    longer = served.frames(num_frames=6, max_tokens=7, question="Why? " * 20)["plan"]
    assert longer["text_tokens"] > asked["text_tokens"]


def test_a_budget_that_can_be_met_chooses_the_frames(served: Client) -> None:
    free = served.frames(sampler="scene")
    answer = served.frames(sampler="scene", max_visual_tokens=40)
    plan = answer["plan"]
    assert len(free["frames"]) == 8 and free["plan"]["budget"] is None
    per = plan["tokens_per_frame"]
    assert len(answer["frames"]) == 40 // per < len(free["frames"])
    assert plan["visual_tokens"] <= 40 < plan["visual_tokens"] + per
    assert plan["budget"]["max_visual_tokens"] == 40 and plan["budget"]["limit"] == 40
    assert plan["budget"]["plan"] and plan["budget"]["plan"] in answer["frames_rule"]
    assert answer["options"]["max_frames"] == len(answer["frames"])
    assert plan["fits"] is True and answer["warnings"] == []


def test_a_budget_that_cannot_be_met_shows_the_frames_and_why(served: Client) -> None:
    """The server's num_frames=4 (16 tokens each) against 40 visual tokens: a chat completion
    is refused; the frames route shows the 4 frames, and the same message as its reason."""
    plain = served.frames()
    answer = served.frames(max_visual_tokens=40)
    refused = error_of(served.chat(max_visual_tokens=40), 400, "max_visual_tokens=40")
    assert refused["param"] == "max_visual_tokens"
    plan = answer["plan"]
    assert indices(answer) == indices(plain) and plan["visual_tokens"] > 40
    assert plan["fits"] is False and plan["reason"] == refused["message"]
    assert plan["budget"] == {"max_visual_tokens": 40, "fit": None, "limit": None, "plan": None}
    assert any("would be refused" in w for w in answer["warnings"])
    tiny = served.frames(max_visual_tokens=5)["plan"]  # not even one frame fits
    assert tiny["fits"] is False and "too small for one frame" in tiny["reason"]
    assert tiny["reason"] == error_of(served.chat(max_visual_tokens=5), 400)["message"]


def test_scene_shots_lie_at_the_cuts(served: Client) -> None:
    assert "scene" in served.get("/v1/ui/config").json()["samplers"]
    answer = served.frames("cuts.mp4", sampler="scene", sampler_options={"min_scene": 0.5})
    shots, frames = answer["shots"], answer["frames"]
    assert [s["first_frame"] for s in shots] == [0, SHOT, 2 * SHOT]
    assert [s["end_frame"] for s in shots] == [SHOT, 2 * SHOT, 3 * SHOT]
    assert [s["boundary"] for s in shots] == ["start", "cut", "cut"]
    assert [s["start"] for s in shots] == [0.0, 1.0, 2.0] and shots[-1]["end"] == 3.0
    positions = [p for s in shots for p in s["frames"]]
    assert sorted(positions) == list(range(len(frames)))  # each frame in one shot
    for shot, colour in zip(shots, COLOURS):
        assert shot["frames"]
        for position in shot["frames"]:
            frame = frames[position]
            assert shot["first_frame"] <= frame["index"] < shot["end_frame"]
            assert shot["start"] <= frame["time"] < shot["end"]
            mean = decoded(frame).convert("RGB").resize((1, 1)).getpixel((0, 0))
            assert all(abs(a - b) < 24 for a, b in zip(mean, colour)), (mean, colour)
    assert served.frames("cuts.mp4")["shots"] == []  # uniform finds none


def test_http_urls_are_fetched_where_the_server_allows_private_hosts(
    small: Client, served: Client, files: str
) -> None:
    answer = small.frames(f"{files}/clip.mp4", num_frames=5)
    assert indices(answer) == indices(served.frames(num_frames=5))
    missing = error_of(small.post("/v1/frames", {"video": f"{files}/missing.mp4"}), 400, "404")
    assert missing["param"] == "video"


# -- GET /v1/ui/config --------------------------------------------------------------------------
def test_config_reflects_the_settings(served: Client, small: Client, pipe: Any) -> None:
    from vidtt.serve.frames import MAX_THUMB, MIN_THUMB, THUMB_SIZE
    from vidtt.serve.protocol import ServeLimits

    config = served.get("/v1/ui/config").json()
    server = served.app.state.vidtt
    assert config["object"] == "ui.config" and config["model"] == server.name
    assert config["api_key_required"] is True and config["local_media"] is True
    assert config["max_body_bytes"] == server.settings.max_body_bytes
    assert config["samplers"] == pipe.registry.names("samplers") and "uniform" in config["samplers"]
    assert "num_frames" in config["sampler_fields"]["uniform"]
    assert config["defaults"]["sampler"] == pipe.sampler.name == "uniform"
    assert config["defaults"]["sampler_options"]["num_frames"] == pipe.sampler_options.num_frames
    assert config["defaults"]["max_new_tokens"] == 4
    assert config["limits"]["max_frames"] == MAX_FRAMES
    assert config["limits"]["max_videos"] == ServeLimits().max_videos
    assert config["context"] == pipe.engine.context_size()
    assert config["thumb_size"] == {"default": THUMB_SIZE, "min": MIN_THUMB, "max": MAX_THUMB}
    other = small.get("/v1/ui/config").json()  # no key needed where the server has none
    assert other["api_key_required"] is False and other["local_media"] is False
    assert other["max_body_bytes"] == SMALL_BODY
    assert other["limits"]["max_frames"] == ServeLimits().max_frames


# -- nothing left on disk -----------------------------------------------------------------------
def test_no_temp_files_left(
    served: Client, small: Client, media: Path, temp: Path, files: str
) -> None:
    cache = Path(os.environ["VIDTT_CACHE_DIR"])
    assert tempfile.gettempdir() == str(temp)
    before = files_in(temp), files_in(cache)
    error_of(served.post("/v1/frames", {"video": data_url(os.urandom(5000))}), 400)
    error_of(served.post("/v1/frames", {"video": data_url(b"not a video", "text/plain")}), 400)
    assert (files_in(temp), files_in(cache)) == before
    clip = (media / "clip.mp4").read_bytes()
    assert len(served.frames(data_url(clip))["frames"]) == 4
    assert len(small.frames(f"{files}/clip.mp4")["frames"]) == 4  # a download
    assert (files_in(temp), files_in(cache)) == before
