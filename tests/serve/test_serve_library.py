"""`vidtt serve --library`: a real server over a small library made here with the `colour`
embedder (installed for the server through a site folder): the search finds the red moment
first, its thumbnail is served, the key is needed, bad requests and paths outside the
thumbnails are refused, and a server without a library says how to give it one."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("lancedb")

from serving import error_of, serve_process  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "sesame"
AUTH = {"Authorization": f"Bearer {KEY}"}


def make_library(folder: Path) -> Path:
    """A library of two videos: a red frame moment (with a thumbnail) and a blue one."""
    import numpy as np
    from PIL import Image

    from vidtt.library import Library, Moment, Video
    from vidtt.testing.embedders import NAMES

    with Library.open(str(folder), dim=len(NAMES), embedder="colour") as library:
        for n, colour in enumerate(("red", "blue")):
            video = Video(f"/videos/{colour}.mp4", 1000 + n, 1)
            vector = np.zeros(len(NAMES), dtype=np.float32)
            vector[NAMES.index(colour)] = 1.0
            thumbs = folder / "thumbnails" / video.video_id
            thumbs.mkdir(parents=True)
            thumb = thumbs / "000004000.jpg"
            Image.new("RGB", (32, 24), (220, 30, 30) if colour == "red" else (30, 60, 220)).save(
                thumb, format="JPEG"
            )
            library.put_video(video, [Moment("frame", 4.0, 6.0, "", vector, str(thumb))])
    (folder.parent / "secret.jpg").write_bytes(b"\xff\xd8 not for clients")
    return folder


@pytest.fixture(scope="module")
def server(llava_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("serve-library")
    library = make_library(root / "lib")
    from vidtt.testing.embedders import colour_plugin

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", colour_plugin(root / "site")["PYTHONPATH"])
        args = ("--library", str(library), "--api-key", KEY, "--no-ui")
        with serve_process(llava_dir, root / "server.log", *args) as base:
            yield base


def test_search_finds_the_red_moment_and_its_thumbnail(server: str) -> None:
    answer = httpx.post(f"{server}/v1/library/search", json={"query": "red"}, headers=AUTH)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list"
    first = body["data"][0]
    assert first["path"] == "/videos/red.mp4" and first["kind"] == "frame"
    assert "thumbnail" not in first
    url = first["thumbnail_url"]
    assert url == f"/v1/library/thumbnails/{first['video_id']}/000004000.jpg"
    image = httpx.get(f"{server}{url}", headers=AUTH)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    blue = httpx.post(
        f"{server}/v1/library/search", json={"query": "blue", "path": "/videos/blue*"}, headers=AUTH
    ).json()["data"]
    assert [hit["path"] for hit in blue] == ["/videos/blue.mp4"]


def test_key_limits_and_paths_are_checked(server: str) -> None:
    search = f"{server}/v1/library/search"
    error_of(httpx.post(search, json={"query": "red"}), 401, "API key")
    error_of(httpx.get(f"{server}/v1/library/thumbnails/{'0' * 24}/000004000.jpg"), 401)
    for limit in (0, 101, "5", True):
        error = error_of(
            httpx.post(search, json={"query": "red", "limit": limit}, headers=AUTH), 400
        )
        assert error["param"] == "limit"
    for query in ("", " ", "x" * 2001, 3):
        error = error_of(httpx.post(search, json={"query": query}, headers=AUTH), 400)
        assert error["param"] == "query"
    red = httpx.post(search, json={"query": "red"}, headers=AUTH).json()["data"][0]["video_id"]
    for tail in (
        f"{red}/..%2F..%2F..%2Fsecret.jpg",
        f"{red}/%2E%2E",
        f"..%2F..%2F{red}/000004000.jpg",
        f"{red}/000004000.JPG",
        f"{red}/000009999.jpg",
        f"{'g' * 24}/000004000.jpg",
        "..%2F../secret.jpg",
    ):
        answer = httpx.get(f"{server}/v1/library/thumbnails/{tail}", headers=AUTH)
        assert answer.status_code == 404, (tail, answer.text)
        assert not answer.content.startswith(b"\xff\xd8")


def test_without_a_library_the_routes_say_how(llava_dir: Path, tmp_path: Path) -> None:
    with serve_process(llava_dir, tmp_path / "server.log", "--no-ui") as base:
        answer = httpx.post(f"{base}/v1/library/search", json={"query": "red"})
        error = error_of(answer, 404, "--library")
        assert error["code"] == "library_not_configured"


def test_a_missing_library_stops_serve_in_one_line(llava_dir: Path, tmp_path: Path) -> None:
    vidtt = str(Path(sys.executable).with_name("vidtt"))
    args = [vidtt, "serve", "--model", str(llava_dir), "--library", str(tmp_path / "none")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "none" in done.stderr
