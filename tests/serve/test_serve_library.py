"""`vidtt serve --library`: a real server over a small library indexed here by `vidtt index`
with the `colour` embedder (installed for both through a site folder): a video with a red
square (4-7 s) and one with a blue square (8-11 s). The search finds the red moment first and
takes the filters (each bad one a 400 naming it); its thumbnail and its video are served (a
range answered 206, a signed link in place of the key); asking the library answers from the
red square's stretch; the key is needed, paths outside the thumbnails are refused, and a
server without a library says how to give it one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("lancedb")

from serving import error_of, serve_process  # noqa: E402

pytestmark = pytest.mark.slow
KEY = "sesame"
AUTH = {"Authorization": f"Bearer {KEY}"}
VIDTT = str(Path(sys.executable).with_name("vidtt"))
RED, BLUE = (220, 30, 30), (30, 60, 220)


def make_library(root: Path, env: dict[str, str]) -> Path:
    """`vidtt index` of two generated videos (red square at 4-7 s, blue at 8-11 s)."""
    from vidtt.testing import make_square_video

    videos = root / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), RED)
    make_square_video(videos / "blue.mp4", (8.0, 11.0), BLUE)
    library = root / "lib"
    args = [VIDTT, "index", str(videos), "--library", str(library), "--embedder", "colour"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    (root / "secret.jpg").write_bytes(b"\xff\xd8 not for clients")
    return library


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-library")


@pytest.fixture(scope="module")
def server(llava_dir: Path, root: Path) -> Iterator[str]:
    from vidtt.testing.embedders import colour_plugin

    env = colour_plugin(root / "site")
    library = make_library(root, env)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", env["PYTHONPATH"])
        args = ("--library", str(library), "--api-key", KEY, "--no-ui", "--frames", "4")
        with serve_process(llava_dir, root / "server.log", *args) as base:
            yield base


def search(server: str, **body: Any) -> Any:
    return httpx.post(f"{server}/v1/library/search", json=body, headers=AUTH, timeout=60)


def found(server: str, query: str, **filters: Any) -> list[tuple[str, float]]:
    answer = search(server, query=query, **filters)
    assert answer.status_code == 200, answer.text
    return [(Path(hit["path"]).name, hit["start"]) for hit in answer.json()["data"]]


def test_search_finds_the_red_moment_and_its_thumbnail(server: str, root: Path) -> None:
    answer = search(server, query="red")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["object"] == "list"
    first = body["data"][0]
    assert first["path"] == str((root / "videos" / "red.mp4").resolve())
    assert first["kind"] == "frame" and first["start"] == 4.0
    assert "thumbnail" not in first
    url = first["thumbnail_url"]
    assert url == f"/v1/library/thumbnails/{first['video_id']}/000004000.jpg"
    image = httpx.get(f"{server}{url}", headers=AUTH)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/jpeg"
    assert image.content[:2] == b"\xff\xd8"
    assert {name for name, _ in found(server, "blue", path="*/blue*")} == {"blue.mp4"}
    assert found(server, "blue", path="*/red*") == []


def test_search_filters_by_kind_date_and_duration(server: str) -> None:
    red = [("red.mp4", 4.0), ("red.mp4", 6.0)]
    assert found(server, "red", kinds=["frame"]) == red
    assert found(server, "red", kinds=["transcript", "shot"]) == []
    assert found(server, "red", since="2000-01-01", until=time.time() + 3600) == red
    assert found(server, "red", since=time.time() + 3600) == []
    assert found(server, "red", until="2000-01-01T08:00") == []
    assert found(server, "red", min_duration=11.5, max_duration=12.5) == red
    assert found(server, "red", min_duration=20) == []
    assert found(server, "red", max_duration=5) == []
    bad = [
        ({"kinds": ["frames"]}, "kinds"),
        ({"kinds": "frame"}, "kinds"),
        ({"since": "yesterday"}, "since"),
        ({"until": True}, "until"),
        ({"since": [2026]}, "since"),
        ({"min_duration": -1}, "min_duration"),
        ({"max_duration": "5"}, "max_duration"),
        ({"min_duration": 5, "max_duration": 3}, "max_duration"),
        ({"path": ""}, "path"),
        ({"kind": ["frame"]}, "kind"),
    ]
    for fields, param in bad:
        error = error_of(search(server, query="red", **fields), 400, param)
        assert error["param"] == param, (fields, error)


def test_asking_the_library_answers_from_the_red_stretch(server: str, root: Path) -> None:
    body = {"question": "Where is the red square?", "moments": 1, "max_tokens": 3}
    answer = httpx.post(f"{server}/v1/library/ask", json=body, headers=AUTH, timeout=300)
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["object"] == "library.answer" and isinstance(data["answer"], str)
    assert data["usage"]["completion_tokens"] <= 3 and data["usage"]["visual_tokens"] > 0
    assert data["finish_reason"] in ("stop", "length")
    [moment] = data["moments"]
    assert moment["moment"] == 1 and moment["path"] == str((root / "videos" / "red.mp4").resolve())
    assert moment["start"] <= 4.0 and 7.0 <= moment["end"] <= 12.0 and moment["spans"] == []
    [video] = data["vidtt"]["videos"]
    assert all(moment["start"] <= t <= moment["end"] for t in video["timestamps"])
    image = httpx.get(f"{server}{moment['thumbnail_url']}", headers=AUTH)
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    played = httpx.get(f"{server}{moment['video_url']}")  # signed: no key needed
    assert played.content == (root / "videos" / "red.mp4").read_bytes()
    when = httpx.post(
        f"{server}/v1/library/ask", json={**body, "spans": True}, headers=AUTH, timeout=300
    ).json()
    assert isinstance(when["vidtt"]["spans"], list)  # read from the answer (none, likely)
    assert all(isinstance(m["spans"], list) for m in when["moments"])


def test_asking_refuses_bad_fields_and_unmatched_questions(server: str) -> None:
    ask = f"{server}/v1/library/ask"
    error_of(httpx.post(ask, json={"question": "red"}), 401, "API key")
    bad = [
        ({}, "question"),
        ({"question": " "}, "question"),
        ({"question": "red", "moments": 0}, "moments"),
        ({"question": "red", "moments": 17}, "moments"),
        ({"question": "red", "spans": "yes"}, "spans"),
        ({"question": "red", "temperature": 5}, "temperature"),
        ({"question": "red", "max_tokens": 0}, "max_tokens"),
        ({"question": "red", "kinds": ["nope"]}, "kinds"),
        ({"question": "red", "since": "soon"}, "since"),
        ({"question": "red", "moment": 2}, "moment"),
    ]
    for body, param in bad:
        error = error_of(httpx.post(ask, json=body, headers=AUTH), 400, param)
        assert error["param"] == param, (body, error)
    error_of(httpx.post(ask, json={"question": "red", "model": "other"}, headers=AUTH), 404)
    unmatched = {"question": "red", "path": "/nowhere/*"}
    error_of(httpx.post(ask, json=unmatched, headers=AUTH), 400, "no moment")


def test_videos_are_served_whole_and_by_range(server: str, root: Path) -> None:
    hit = search(server, query="red").json()["data"][0]
    url = f"{server}/v1/library/videos/{hit['video_id']}"
    data = (root / "videos" / "red.mp4").read_bytes()
    whole = httpx.get(url, headers=AUTH)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["content-type"] == "video/mp4"
    part = httpx.get(url, headers={**AUTH, "Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == data[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
    error_of(httpx.get(url), 401, "API key")
    assert httpx.get(f"{server}{hit['video_url']}").content == data
    tampered = hit["video_url"].replace("signature=", "signature=0")
    error_of(httpx.get(f"{server}{tampered}"), 401, "link")
    other = f"{server}/v1/library/videos/{'0' * 24}"
    error_of(httpx.get(other, headers=AUTH), 404, "no video")
    stolen = hit["video_url"].replace(hit["video_id"], "0" * 24)  # another video's link
    error_of(httpx.get(f"{server}{stolen}"), 401)
    assert httpx.get(f"{url}..%2F..", headers=AUTH).status_code == 404


def test_the_library_says_what_it_holds(server: str) -> None:
    error_of(httpx.get(f"{server}/v1/library"), 401)
    about = httpx.get(f"{server}/v1/library", headers=AUTH)
    assert about.status_code == 200, about.text
    data = about.json()
    assert data["object"] == "library" and data["name"].endswith("lib")
    assert (data["videos"], data["embedder"]) == (2, "colour") and data["moments"] >= 12


def test_key_limits_and_paths_are_checked(server: str) -> None:
    url = f"{server}/v1/library/search"
    error_of(httpx.post(url, json={"query": "red"}), 401, "API key")
    error_of(httpx.get(f"{server}/v1/library/thumbnails/{'0' * 24}/000004000.jpg"), 401)
    for limit in (0, 101, "5", True):
        error = error_of(search(server, query="red", limit=limit), 400)
        assert error["param"] == "limit"
    for query in ("", " ", "x" * 2001, 3):
        error = error_of(search(server, query=query), 400)
        assert error["param"] == "query"
    red = search(server, query="red").json()["data"][0]["video_id"]
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
        for method, path in (
            ("POST", "/v1/library/search"),
            ("POST", "/v1/library/ask"),
            ("GET", "/v1/library"),
            ("GET", f"/v1/library/videos/{'0' * 24}"),
        ):
            answer = httpx.request(method, f"{base}{path}", json={"query": "red"})
            error = error_of(answer, 404, "--library")
            assert error["code"] == "library_not_configured"
        config = httpx.get(f"{base}/v1/ui/config").json()
        assert config["library"] is False


def test_a_missing_library_stops_serve_in_one_line(llava_dir: Path, tmp_path: Path) -> None:
    args = [VIDTT, "serve", "--model", str(llava_dir), "--library", str(tmp_path / "none")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "none" in done.stderr
