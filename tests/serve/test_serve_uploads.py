"""Uploads (`POST /v1/uploads`, `upload:ID` URLs) as an API user drives them, on in-process
servers on 127.0.0.1: a video sent once and asked about many times gives what a `data:` URL
gives; the key, the body limit, the store's limit and lifetime; refused bodies leave nothing."""

from __future__ import annotations

import base64
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import error_of, moved_temp, scrape, serving, tiny_pipeline, value  # noqa: E402

pytestmark = pytest.mark.slow

KEY = "upload-key-123"
QUESTION = "What happens?"


class Client:
    """One running server with its key: uploads and requests naming them."""

    def __init__(self, base: str, app: Any, key: str | None = KEY) -> None:
        self.base, self.app, self.key = base, app, key

    def headers(self, key: Any = "") -> dict[str, str]:
        key = self.key if key == "" else key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def send(self, data: bytes, kind: str = "video/mp4", key: Any = "") -> Any:
        headers = {**self.headers(key), "Content-Type": kind}
        return httpx.post(f"{self.base}/v1/uploads", content=data, headers=headers, timeout=60)

    def upload(self, data: bytes) -> dict[str, Any]:
        response = self.send(data)
        assert response.status_code == 201, response.text
        card: dict[str, Any] = response.json()
        return card

    def post(self, path: str, body: Any) -> Any:
        return httpx.post(self.base + path, json=body, headers=self.headers(), timeout=60)

    def chat(self, video: str, **fields: Any) -> Any:
        content = [
            {"type": "video_url", "video_url": {"url": video}},
            {"type": "text", "text": QUESTION},
        ]
        body = {"messages": [{"role": "user", "content": content}], "temperature": 0, **fields}
        return self.post("/v1/chat/completions", body)

    @property
    def folder(self) -> Path | None:
        return self.app.state.vidtt.uploads.folder  # type: ignore[no-any-return]


def data_url(data: bytes) -> str:
    return f"data:video/mp4;base64,{base64.b64encode(data).decode()}"


def files_in(folder: Path | None) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder and folder.exists() else []


@pytest.fixture(scope="module")
def temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The process's temp folder for this module: where the servers keep their uploads."""
    with moved_temp(tmp_path_factory, "upload-tmp") as folder:
        yield folder


@pytest.fixture(scope="module")
def pipe(llava: Any) -> Any:
    return tiny_pipeline(llava)


@contextlib.contextmanager
def running(pipe: Any, **settings: Any) -> Iterator[Client]:
    with serving(pipe, api_key=KEY, **settings) as (base, app):
        yield Client(base, app)


@pytest.fixture(scope="module")
def served(pipe: Any, temp: Path) -> Iterator[Client]:
    with running(pipe, max_body_bytes=1 << 20) as client:
        yield client
        folder = client.folder
    assert folder is not None and not folder.exists()  # gone with the server


@pytest.fixture(scope="module")
def clip(videos: dict[str, Path]) -> bytes:
    return videos["h264"].read_bytes()


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    from vidtt.testing import make_video

    return make_video(
        tmp_path_factory.mktemp("other") / "big.mp4", frames=24, size=(320, 240)
    ).read_bytes()


def without_cached(usage: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in usage.items() if k != "prompt_tokens_details"}


# -- the round trip -----------------------------------------------------------------------------
def test_an_upload_is_asked_about_as_its_data_url_is(served: Client, clip: bytes) -> None:
    started = time.time()
    card = served.upload(clip)
    assert set(card) == {"id", "object", "url", "bytes", "created_at", "expires_at", "video"}
    assert card["object"] == "upload" and card["url"] == f"upload:{card['id']}"
    assert card["bytes"] == len(clip)
    assert card["video"]["width"] == 160 and card["video"]["height"] == 120
    assert card["video"]["codec"] == "h264" and card["video"]["duration"] == pytest.approx(2.0)
    assert abs(card["expires_at"] - (started + 3600)) < 5
    assert card["id"] in files_in(served.folder)
    assert (served.folder / card["id"]).read_bytes() == clip  # type: ignore[operator]

    frames = served.post("/v1/frames", {"video": card["url"]}).json()
    by_data = served.post("/v1/frames", {"video": data_url(clip)}).json()
    assert frames["frames"] == by_data["frames"] and frames["plan"] == by_data["plan"]
    for _ in range(2):  # named again and again, the upload stays
        answer = served.chat(card["url"]).json()
        expected = served.chat(data_url(clip)).json()
        assert answer["choices"] == expected["choices"]
        # the same tokens (how many of them the prefix cache held differs from ask to ask)
        assert without_cached(answer["usage"]) == without_cached(expected["usage"])
        assert answer["vidtt"]["videos"][0]["indices"] == expected["vidtt"]["videos"][0]["indices"]
    got = httpx.get(f"{served.base}/v1/uploads/{card['id']}", headers=served.headers())
    assert got.status_code == 200 and got.json()["expires_at"] >= card["expires_at"]


def test_deleted_uploads_are_gone(served: Client, clip: bytes) -> None:
    card = served.upload(clip)
    url = f"{served.base}/v1/uploads/{card['id']}"
    deleted = httpx.delete(url, headers=served.headers())
    assert deleted.json() == {"id": card["id"], "object": "upload.deleted", "deleted": True}
    assert card["id"] not in files_in(served.folder)
    error = error_of(served.chat(card["url"]), 400, card["url"], "POST /v1/uploads")
    assert error["code"] == "upload_not_found"
    assert error["param"] == "messages[0].content[0].video_url.url"
    error = error_of(served.post("/v1/frames", {"video": card["url"]}), 400, "no upload")
    assert error["param"] == "video"
    error_of(httpx.get(url, headers=served.headers()), 404, card["id"])
    error_of(httpx.delete(url, headers=served.headers()), 404, card["id"])
    for bad in ("upload:", "upload:../../etc/passwd", "upload:" + "x" * 100):
        assert error_of(served.chat(bad), 400, "no upload")["code"] == "upload_not_found"


def test_every_route_needs_the_key(served: Client, clip: bytes) -> None:
    card = served.upload(clip)
    held = files_in(served.folder)
    for key in (None, "wrong-key"):
        error = error_of(served.send(clip, key=key), 401, "API key")
        assert error["code"] == "invalid_api_key"
        for method in ("GET", "DELETE"):
            headers = served.headers(key)
            response = httpx.request(
                method, f"{served.base}/v1/uploads/{card['id']}", headers=headers
            )
            error_of(response, 401, "API key")
    assert files_in(served.folder) == held


# -- bodies refused -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "kind", "status", "words"),
    [
        (b"", "video/mp4", 400, ["empty"]),
        (b"hello, this is not a video\n" * 40, "video/mp4", 400, ["not a readable video"]),
        (b"<!doctype html><html><body>a page</body></html>", "video/mp4", 400, ["web page"]),
        (os.urandom(4096), "application/octet-stream", 400, ["not a readable video"]),
        (b'{"video": "clip.mp4"}', "application/json", 400, ["Content-Type", "--data-binary"]),
        (b"--x\r\n", "multipart/form-data; boundary=x", 400, ["not 'multipart/form-data'"]),
        (b"\0" * ((1 << 20) + 1), "video/mp4", 413, ["1048576 bytes"]),
    ],
    ids=["empty", "text", "html", "noise", "json", "form", "too-large"],
)
def test_refused_bodies_leave_nothing(
    served: Client, temp: Path, body: bytes, kind: str, status: int, words: list[str]
) -> None:
    def held() -> list[Path]:  # every file under the temp folder, the uploads' included
        return sorted(p for p in temp.rglob("*") if p.is_file())

    before = held()
    error = error_of(served.send(body, kind), status, *words)
    assert "vidtt-uploads-" not in error["message"]  # the server's folder is its own
    assert held() == before


def test_a_client_gone_mid_upload_leaves_nothing(served: Client, temp: Path, clip: bytes) -> None:
    import socket

    store = served.app.state.vidtt.uploads
    before = sorted(p for p in temp.rglob("*") if p.is_file())
    host, port = served.base.removeprefix("http://").split(":")
    head = (
        f"POST /v1/uploads HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: video/mp4\r\nContent-Length: {len(clip) * 4}\r\n\r\n"
    )
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(head.encode() + clip)  # a quarter of what it said it would send
        deadline = time.monotonic() + 10
        while store.arriving == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert store.arriving > 0  # on its way, its room reserved
    deadline = time.monotonic() + 10
    while store.arriving and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.arriving == 0
    assert sorted(p for p in temp.rglob("*") if p.is_file()) == before


def test_an_upload_is_for_videos_only(served: Client, clip: bytes) -> None:
    card = served.upload(clip)
    content = [
        {"type": "image_url", "image_url": {"url": card["url"]}},
        {"type": "text", "text": "?"},
    ]
    response = served.post(
        "/v1/chat/completions", {"messages": [{"role": "user", "content": content}]}
    )
    error_of(response, 400, "upload: URLs name videos")


def test_a_sampling_error_names_the_upload_not_the_servers_file(
    served: Client, clip: bytes
) -> None:
    card = served.upload(clip)
    error = error_of(served.chat(card["url"], start=30.0), 400, card["url"])
    assert str(served.folder) not in error["message"]


# -- the store's limits -------------------------------------------------------------------------
def test_the_least_recently_named_make_room(
    pipe: Any, temp: Path, clip: bytes, other: bytes
) -> None:
    with running(pipe, max_upload_bytes=2 * len(clip) + len(clip) // 2) as client:
        first, second = client.upload(clip), client.upload(clip)
        assert client.chat(first["url"]).status_code == 200  # first is now the newer
        third = client.upload(clip)
        assert sorted(files_in(client.folder)) == sorted([first["id"], third["id"]])
        found = scrape(client.base)
        assert value(found, "vidtt_uploads") == 2
        assert value(found, "vidtt_upload_bytes") == 2 * len(clip)
        error_of(client.chat(second["url"]), 400, second["url"])
        error_of(client.send(other + clip + clip), 413, f"{2 * len(clip) + len(clip) // 2} bytes")
        assert sorted(files_in(client.folder)) == sorted([first["id"], third["id"]])


def test_room_is_reserved_as_bytes_arrive(tmp_path: Path) -> None:
    """The store's bound holds while uploads arrive: room is made as each chunk comes, and
    when uploads on their way hold it, the next is told to come back (503)."""
    from vidtt.serve.errors import APIError
    from vidtt.serve.upload_store import Uploads

    store = Uploads(max_bytes=100, ttl=3600)
    name, path = store.new_path()
    path.write_bytes(b"x" * 60)
    store.reserve(60)
    store.add(name, path, 60, {})
    store.reserve(30)  # arriving: 30 more fit beside the 60 kept
    store.reserve(30)  # no room: the kept upload goes
    assert store.usage() == (0, 0) and not path.exists() and store.arriving == 60
    with pytest.raises(APIError) as refused:
        store.reserve(41)
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    store.release(60)
    store.reserve(100)
    assert store.arriving == 100
    store.close()
    assert store.folder is None and not path.parent.exists()


def test_an_upload_unused_for_its_lifetime_is_dropped(pipe: Any, temp: Path, clip: bytes) -> None:
    with running(pipe, upload_ttl=1.0) as client:
        card = client.upload(clip)
        kept = client.upload(clip)
        for _ in range(3):
            time.sleep(0.4)
            assert client.chat(kept["url"], max_tokens=1).status_code == 200  # its clock restarts
        error = error_of(client.chat(card["url"]), 400, "kept 1 s after their last use")
        assert error["code"] == "upload_not_found"
        assert files_in(client.folder) == [kept["id"]]


def test_uploads_off(pipe: Any, temp: Path, clip: bytes) -> None:
    with running(pipe, max_upload_bytes=0) as client:
        error = error_of(client.send(clip), 404, "--max-uploads-mb 0")
        assert error["code"] == "uploads_off"
        error_of(client.chat("upload:upload-0123"), 400, "takes no uploads")
        config = httpx.get(f"{client.base}/v1/ui/config", headers=client.headers()).json()
        assert config["max_upload_bytes"] is None
        assert client.folder is None


def test_the_folder_goes_with_the_server(pipe: Any, temp: Path, clip: bytes) -> None:
    with running(pipe, max_body_bytes=1 << 20) as client:
        config = httpx.get(f"{client.base}/v1/ui/config", headers=client.headers()).json()
        assert config["max_upload_bytes"] == 1 << 20  # the body limit, below the store's
        assert config["upload_ttl"] == 3600
        sending = [threading.Thread(target=client.upload, args=(clip,)) for _ in range(4)]
        for thread in sending:
            thread.start()
        for thread in sending:
            thread.join(60)
        folder = client.folder
        assert folder is not None and len(files_in(folder)) == 4
    assert not folder.exists()


# -- the command --------------------------------------------------------------------------------
def test_the_flag(llava_dir: Path) -> None:
    from commands import in_process

    done = in_process("serve", "--model", str(llava_dir), "--max-uploads-mb", "-1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "vidtt: error: --max-uploads-mb must be 0 or more, not -1\n"
    helped = " ".join(in_process("serve", "--help").stdout.split())
    assert "--max-uploads-mb MB" in helped and "0 turns uploads off (1024)" in helped


def test_the_flag_sets_the_store() -> None:
    from vidtt.cli.app import build_parser
    from vidtt.cli.serve import settings_from_args

    for given, held in (["--max-uploads-mb", "0.5"], 1 << 19), ([], 1 << 30):
        args = build_parser().parse_args(["serve", *given])
        assert settings_from_args(args, "m").max_upload_bytes == held
