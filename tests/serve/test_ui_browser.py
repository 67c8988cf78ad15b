"""The page at / of `vidtt serve` in a real browser: headless Chromium driven by Playwright,
against a `vidtt serve` process on 127.0.0.1 with the tiny llava model.

Upload a video and see its frames (the times `/v1/frames` gives), ask and get the API's own
greedy answer streamed in, follow up, change the sampling, copy the request as curl and
Python (both run here and give the same answer), use it all from the keyboard; bad input says
so on the page and leaves nothing on disk. `VIDTT_SCREENSHOTS=1` also writes the screenshots
of docs/serve.md (docs/images/serve-desktop.png and serve-phone.png).
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from serving import wait_healthy  # noqa: E402

from vidtt.testing.streams import free_port  # noqa: E402

playwright = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.slow

CHROMIUM = Path(os.environ.get("VIDTT_CHROMIUM", "/usr/bin/chromium"))
if not CHROMIUM.is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM} (apt-get install chromium, or set VIDTT_CHROMIUM)",
        allow_module_level=True,
    )

expect = playwright.expect
VIDTT = str(Path(sys.executable).with_name("vidtt"))
KEY = "ui-test-key"
MODEL = "tiny-llava"
QUESTION = "What is happening in this video?"
PLACEHOLDER = "YOUR_VIDEO_URL_OR_PATH"
WAIT_MS = 20_000  # the longest any one wait on the page may take
expect.set_options(timeout=WAIT_MS)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "images"


def clock(seconds: float, digits: int = 1) -> str:
    """A time as the page writes it: mm:ss.s (JavaScript's Math.round: halves go up)."""
    scale = 10**digits
    minutes, rest = divmod(math.floor(seconds * scale + 0.5), 60 * scale)
    return f"{minutes:02d}:{rest / scale:0{3 + digits}.{digits}f}"


def files_in(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


# -- the server and the browser -----------------------------------------------------------------
class Served:
    def __init__(self, base: str, process: subprocess.Popen[Any], log: Path, **dirs: Path) -> None:
        self.base, self.process, self.log = base, process, log
        self.media, self.tmp, self.cache = dirs["media"], dirs["tmp"], dirs["cache"]

    def post(self, path: str, body: Any, key: str | None = KEY) -> Any:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.post(f"{self.base}{path}", json=body, headers=headers, timeout=60)

    def frames(self, video: str, **fields: Any) -> dict[str, Any]:
        response = self.post("/v1/frames", {"video": video, "thumb_size": 160, **fields})
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def error(self, path: str, body: Any) -> str:
        response = self.post(path, body)
        assert 400 <= response.status_code < 500, response.text
        return str(response.json()["error"]["message"])

    def upload_error(self, data: bytes) -> str:
        """What the server says of `data` uploaded as the page uploads a file not a video."""
        headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/octet-stream"}
        response = httpx.post(f"{self.base}/v1/uploads", content=data, headers=headers)
        assert response.status_code == 400, response.text
        return str(response.json()["error"]["message"])

    def upload(self, url: str, method: str = "GET") -> int:
        """The status of `GET` (or `method`) `/v1/uploads/{id}` for an upload: URL (GET: 200
        while it is kept)."""
        name = url.removeprefix("upload:")
        headers = {"Authorization": f"Bearer {KEY}"}
        return httpx.request(method, f"{self.base}/v1/uploads/{name}", headers=headers).status_code


def video_url(body: dict[str, Any]) -> str:
    """The URL of the (first) video of a chat request the page sent."""
    return str(body["messages"][0]["content"][0]["video_url"]["url"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vidtt.testing.videos import make_video

    return make_video(tmp_path_factory.mktemp("clip") / "clip.mp4", frames=48)


@contextlib.contextmanager
def launched(root: Path, clip: Path, *flags: str) -> Iterator[Served]:
    """`vidtt serve` with a key, a 1 MB body limit, a media folder, and temp and cache folders
    of its own (to see that nothing is left in them), and `flags`."""
    from vidtt.testing.models import make_tiny_llava

    model = make_tiny_llava(root / "model", context=2048)
    dirs = {name: root / name for name in ("media", "tmp", "cache")}
    for folder in dirs.values():
        folder.mkdir()
    shutil.copy(clip, dirs["media"] / clip.name)
    port, log = free_port(), root / "server.log"
    args = [
        VIDTT, "serve", "--model", str(model), "--served-model-name", MODEL, "--frames", "4",
        "--max-new-tokens", "8", "--host", "127.0.0.1", "--port", str(port), "--api-key", KEY,
        "--allowed-local-media-path", str(dirs["media"]), "--max-body-mb", "1",
        "--no-access-log", *flags,
    ]  # fmt: skip
    env = {
        **os.environ,
        "VIDTT_BACKEND": "cpu",
        "TMPDIR": str(dirs["tmp"]),
        "VIDTT_CACHE_DIR": str(dirs["cache"]),
    }
    with log.open("w") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log, 120)
        said = log.read_text()  # where the page is, beside the API
        assert f"at {base}/v1 " in said and f"; the page at {base}/\n" in said, said
        yield Served(base, process, log, **dirs)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(30)
        assert "Traceback" not in log.read_text(), log.read_text()
    assert not list(dirs["tmp"].iterdir())  # the uploads went with the server


@pytest.fixture(scope="module")
def server(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with launched(tmp_path_factory.mktemp("ui-serve"), clip) as served:
        yield served


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright.sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: Any, server: Served) -> Iterator[Any]:
    """A fresh tab at 1280x900 (nothing kept between tests); any script error, or anything the
    Content-Security-Policy refused, fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=server.base)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    tab.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}")
            if message.type == "error" and "status of 4" not in message.text
            else None
        ),
    )  # (a 4xx answer is logged by Chromium itself; the tests make some on purpose)
    try:
        yield tab
    finally:
        context.close()
    assert not problems, problems


def sign_in(page: Any, key: str = KEY) -> None:
    """Open the page, which asks for the key, and give it."""
    page.goto("/")
    expect(page.get_by_role("alert")).to_contain_text("This server needs an API key")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    expect(page.locator("#model")).to_have_text(MODEL)
    expect(page.locator("#alert")).to_be_empty()  # (and hidden)


def upload(page: Any, path: Path, frames: int = 4) -> None:
    page.get_by_label("Upload a video").set_input_files(path)
    expect(page.locator("#strip figure")).to_have_count(frames)
    expect(page.locator("#strip")).to_have_attribute("aria-busy", "false")


def refreshed(page: Any, change: Any, **fields: Any) -> None:
    """Do `change`, then wait until the strip shows the frames of the request with `fields`
    (None: without that field); earlier refreshes the change made on its way are skipped."""

    def wanted(response: Any) -> bool:
        if not response.url.endswith("/v1/frames"):
            return False
        body = response.request.post_data_json
        return all(body.get(k) == v for k, v in fields.items())

    with page.expect_response(wanted):
        change()
    expect(page.locator("#strip")).to_have_attribute("aria-busy", "false")


def strip_times(page: Any) -> list[float]:
    times = page.locator("#strip figure").evaluate_all("all => all.map(f => f.dataset.time)")
    return [float(t) for t in times]


def data_url(path: Path) -> str:
    return f"data:video/mp4;base64,{base64.b64encode(path.read_bytes()).decode()}"


def answer_of(page: Any, turn: int) -> str:
    """The text of the `turn`-th answer (0 first), once it has finished."""
    answer = page.locator(".turn.assistant").nth(turn)
    expect(answer).to_have_attribute("data-done", "true")
    return str(answer.locator(".text").text_content())


def plain(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """The same request, not streamed, made with httpx."""
    response = served.post(
        "/v1/chat/completions", {**body, "stream": False, "stream_options": None}
    )
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def ask(page: Any, question: str) -> dict[str, Any]:
    """Type a question and press Enter; the chat request the page sent."""
    box = page.get_by_label("Question")
    box.fill(question)
    with page.expect_request(lambda r: r.url.endswith("/v1/chat/completions")) as sent:
        box.press("Enter")
    return sent.value.post_data_json  # type: ignore[no-any-return]


# -- the tests ----------------------------------------------------------------------------------
def test_upload_shows_the_sampled_frames_and_the_plan(page, server, clip) -> None:
    sign_in(page)
    upload(page, clip)
    expected = server.frames(data_url(clip))
    times = [f["time"] for f in expected["frames"]]
    assert strip_times(page) == times
    figures = page.locator("#strip figure")
    assert figures.locator("figcaption time").all_text_contents() == [clock(t) for t in times]
    alts = [f"frame at {math.floor(t * 10 + 0.5) / 10:.1f} s" for t in times]
    assert [figures.nth(i).get_by_role("img").get_attribute("alt") for i in range(4)] == alts
    for i in range(4):
        expect(page.get_by_role("img", name=alts[i], exact=True)).to_be_visible()
    plan = expected["plan"]
    line = (
        f"4 frames × {plan['tokens_per_frame']} tokens = {plan['visual_tokens']} visual tokens; "
        f"budget none; context {plan['context']}"
    )
    expect(page.locator("#plan")).to_have_text(line)
    expect(page.locator("#plan-box")).not_to_have_class(re.compile("over"))
    expect(page.get_by_role("status").filter(has_text="sampled by uniform")).to_contain_text(
        "4 frames of 2.0 s, 160x120"
    )
    # a budget too small for the frames asked for: said in the warning style
    page.get_by_label("Max visual tokens").fill("20")
    expect(page.locator("#plan-box")).to_have_class(re.compile("over"))
    expect(page.locator("#plan")).to_contain_text("budget 20; context 2048: does not fit")
    expect(page.locator("#plan-reason")).to_contain_text("over the budget")
    # the file went once, as an upload that the strip's requests name; another video drops it
    with page.expect_request(lambda r: r.url.endswith("/v1/frames")) as strip:
        page.get_by_label("Max visual tokens").fill("")
    uploaded = strip.value.post_data_json["video"]
    assert uploaded.startswith("upload:upload-") and server.upload(uploaded) == 200
    expect(page.locator("#file-hint")).to_have_text(
        "up to 1 MB (1048576 bytes); send large videos by URL, or as a file on the server. "
        "You can also drop a file on this panel."
    )
    page.get_by_label("or a file on the server").fill(clip.name)
    page.get_by_role("button", name="Use path").click()
    expect(page.locator("#current")).to_contain_text("(on the server)")
    for _ in range(50):
        if server.upload(uploaded) == 404:
            break
        page.wait_for_timeout(100)
    assert server.upload(uploaded) == 404


def test_ask_streams_the_api_answer_and_follows_up(page, server, clip) -> None:
    sign_in(page)
    upload(page, clip)
    with page.expect_response(lambda r: r.url.endswith("/v1/chat/completions")) as streamed:
        first = ask(page, QUESTION)
    assert streamed.value.headers["content-type"].startswith("text/event-stream")
    assert first["stream"] is True and first["model"] == MODEL
    uploaded = video_url(first)
    assert uploaded.startswith("upload:upload-")  # sent once, named by every request
    assert first["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "video_url", "video_url": {"url": uploaded}},
                {"type": "text", "text": QUESTION},
            ],
        }
    ]
    reply = plain(server, first)
    text = reply["choices"][0]["message"]["content"]
    assert text and answer_of(page, 0) == text
    copy = page.locator(".turn.assistant").first.get_by_role("button", name="Copy the answer")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == text
    assert reply["vidtt"]["videos"][0]["timestamps"] == strip_times(page)  # what the model saw
    expect(page.locator(".turn.assistant .meta").first).to_contain_text("8 tokens")
    follow = ask(page, "And then?")
    assert follow["messages"] == [
        *first["messages"],
        {"role": "assistant", "content": text},
        {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
    ]
    assert answer_of(page, 1) == plain(server, follow)["choices"][0]["message"]["content"]
    expect(page.locator(".turn")).to_have_count(4)
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".turn")).to_have_count(0)
    again = ask(page, "Once more?")
    assert len(again["messages"]) == 1 and again["messages"][0]["content"][0]["type"] == "video_url"
    answer_of(page, 0)


def test_answer_settings_and_stop(page, server, clip) -> None:
    """The answer settings are sent; Stop ends a long answer, keeps what came, and the server
    stops generating it; the follow-up carries the part that came."""
    sign_in(page)
    upload(page, clip)
    page.get_by_text("Answer settings").click()
    page.get_by_label("Max answer tokens").fill("3")
    page.get_by_label("Temperature").fill("0")
    body = ask(page, QUESTION)
    assert body["max_tokens"] == 3 and body["temperature"] == 0
    assert answer_of(page, 0) == plain(server, body)["choices"][0]["message"]["content"]
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_disabled()

    cancelled = httpx.get(f"{server.base}/health", timeout=5).json()["cancelled"]
    page.get_by_label("Max answer tokens").fill("1900")  # seconds of generation
    ask(page, QUESTION)
    expect(page.locator(".turn.assistant").nth(1).locator(".text")).not_to_be_empty()
    stop.click()
    expect(page.locator(".turn.assistant .meta").nth(1)).to_have_text("stopped")
    expect(stop).to_be_disabled()
    expect(page.get_by_label("Question")).to_be_focused()
    part = answer_of(page, 1)
    page.get_by_label("Max answer tokens").fill("3")
    follow = ask(page, "Go on.")
    assert follow["messages"][-2] == {"role": "assistant", "content": part}
    api = server.post("/v1/chat/completions", {**follow, "stream": False, "stream_options": None})
    if api.status_code == 200:
        assert answer_of(page, 2) == api.json()["choices"][0]["message"]["content"]
    else:  # a part long enough to fill the context (a busy machine stops it late): said so
        assert api.json()["error"]["code"] == "context_length_exceeded", api.text
        expect(page.get_by_role("alert")).to_contain_text(api.json()["error"]["message"])
        expect(page.get_by_label("Question")).to_have_value("Go on.")  # given back

    health = httpx.get(f"{server.base}/health", timeout=5).json()
    assert health["cancelled"] == cancelled + 1 and health["in_flight"] == 0


def drop(page: Any, path: Path) -> None:
    """Drag `path` over the video panel (which shows it takes it) and drop it there."""
    transfer = page.evaluate_handle(
        """([name, data]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "video/mp4" }));
            return transfer;
        }""",
        [path.name, base64.b64encode(path.read_bytes()).decode()],
    )
    panel = page.locator("section.media")
    panel.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(panel).to_have_class(re.compile("dropping"))
    panel.dispatch_event("drop", {"dataTransfer": transfer})
    expect(panel).not_to_have_class(re.compile("dropping"))


def test_a_file_dropped_on_the_panel_is_uploaded_its_progress_shown(page, server, tmp_path) -> None:
    from vidtt.testing.videos import make_video

    sign_in(page)
    video = make_video(tmp_path / "dropped.mp4", frames=48, size=(320, 240), options={"qp": "0"})
    size = video.stat().st_size
    assert 200_000 < size < 1 << 20, size  # seconds at the throttled rate, within the limit
    shown = f"{round(size / 1024, 1):g}"  # as the page writes sizes
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    slow = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150_000}
    network.send("Network.emulateNetworkConditions", slow)
    with page.expect_response(lambda r: r.url.endswith("/v1/uploads")) as uploaded:
        drop(page, video)
        bar = page.get_by_role("progressbar", name="Upload progress")
        expect(bar).to_be_visible()
        expect(page.locator("#current")).to_have_text(f"Uploading dropped.mp4 ({shown} KB)…")
        page.wait_for_function(
            "() => { const v = document.getElementById('upload-progress').value; "
            "return v > 0 && v < 1; }",
            polling=20,
        )  # part of the way
    network.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    assert uploaded.value.status == 201
    expect(bar).to_be_hidden()
    expect(page.locator("#strip figure")).to_have_count(4)
    expect(page.locator("#current")).to_have_text(f"Video: dropped.mp4 ({shown} KB).")
    times = [f["time"] for f in server.frames(uploaded.value.json()["url"])["frames"]]
    assert strip_times(page) == times


def test_an_upload_the_server_no_longer_has_is_sent_again(page, server, clip) -> None:
    """Expired, or the server restarted: the page sends its file again and the request once
    more, the conversation naming the new upload; nothing is lost, no error shown."""
    sign_in(page)
    upload(page, clip)
    first = ask(page, QUESTION)
    answer_of(page, 0)
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if "/v1/" in r.url else None)

    def lose(url: str) -> None:
        assert server.upload(url, "DELETE") == 200

    lose(video_url(first))
    box = page.get_by_label("Question")
    box.fill("And then?")
    box.press("Enter")
    text = answer_of(page, 1)
    posts = [(r.url.rsplit("/", 1)[1], r.post_data_json if "chat" in r.url else None) for r in sent]
    assert [name for name, _ in posts] == ["completions", "uploads", "completions"]
    again = posts[2][1]
    renewed = video_url(again)
    assert renewed != video_url(first) and server.upload(renewed) == 200
    assert again["messages"][1:] == [
        {"role": "assistant", "content": answer_of(page, 0)},
        {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
    ]
    assert text == plain(server, again)["choices"][0]["message"]["content"]
    expect(page.locator("#alert")).to_be_empty()
    expect(page.locator("#current")).to_have_text(re.compile(r"^Video: clip\.mp4 \("))

    lose(renewed)  # the strip too
    refreshed(page, lambda: page.get_by_label("Frames", exact=True).fill("5"), num_frames=5)
    expect(page.locator("#strip figure")).to_have_count(5)
    expect(page.locator("#alert")).to_be_empty()
    follow = ask(page, "Anything else?")
    assert video_url(follow) not in (renewed, video_url(first))  # the newest upload
    assert server.upload(video_url(follow)) == 200
    answer_of(page, 2)


def test_a_reload_keeps_the_video_the_conversation_and_the_fields(page, server, clip) -> None:
    sign_in(page)
    upload(page, clip)
    refreshed(page, lambda: page.get_by_label("Frames", exact=True).fill("3"), num_frames=3)
    page.get_by_text("Answer settings").click()
    page.get_by_label("Max answer tokens").fill("5")
    first = ask(page, QUESTION)
    text = answer_of(page, 0)
    meta = page.locator(".turn.assistant .meta").first.text_content()

    page.reload()
    expect(page.locator("#model")).to_have_text(MODEL)  # the key was kept too
    expect(page.locator(".turn")).to_have_count(2)
    expect(page.locator(".turn.user .text")).to_have_text(QUESTION)
    assert answer_of(page, 0) == text
    expect(page.locator(".turn.assistant .meta")).to_have_text(str(meta))
    expect(page.get_by_label("Frames", exact=True)).to_have_value("3")
    expect(page.get_by_label("Max answer tokens")).to_have_value("5")
    expect(page.locator("#strip figure")).to_have_count(3)
    expect(page.locator("#current")).to_have_text(re.compile(r"^Video: clip\.mp4 \("))
    follow = ask(page, "And then?")
    assert follow["messages"] == [
        *first["messages"],
        {"role": "assistant", "content": text},
        {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
    ]
    assert follow["max_tokens"] == 5 and follow["num_frames"] == 3
    answer_of(page, 1)

    page.get_by_role("button", name="New conversation").click()
    page.reload()
    expect(page.locator("#strip figure")).to_have_count(3)  # the video stays
    expect(page.locator(".turn")).to_have_count(0)
    again = ask(page, "Once more?")
    assert len(again["messages"]) == 1 and video_url(again) == video_url(first)
    answer_of(page, 0)
    expect(page.locator("#alert")).to_be_empty()


def test_changing_the_sampling_changes_the_strip(page, server, clip) -> None:
    sign_in(page)
    upload(page, clip)
    fps = page.get_by_label("Frames a second")
    expect(fps).to_be_hidden()  # uniform takes a count, not a rate
    frames = page.get_by_label("Frames", exact=True)
    refreshed(page, lambda: frames.fill("6"), num_frames=6)
    expect(page.locator("#strip figure")).to_have_count(6)
    times = [f["time"] for f in server.frames(data_url(clip), num_frames=6)["frames"]]
    assert strip_times(page) == times
    expect(page.locator("#strip figcaption time")).to_have_text([clock(t) for t in times])

    def to_interval() -> None:
        page.get_by_label("Sampler").select_option("interval")
        expect(fps).to_be_visible()
        frames.fill("")
        fps.fill("1.5")

    refreshed(page, to_interval, sampler="interval", fps=1.5, max_frames=None)
    expected = server.frames(data_url(clip), sampler="interval", fps=1.5)["frames"]
    assert strip_times(page) == [f["time"] for f in expected] and len(expected) == 3
    expect(page.locator("#strip-status")).to_contain_text("sampled by interval")


def test_the_request_as_curl_and_python_gives_the_same_answer(page, server, clip) -> None:
    sign_in(page)
    upload(page, clip)
    page.get_by_label("Frames", exact=True).fill("3")
    expect(page.locator("#strip figure")).to_have_count(3)
    ask(page, QUESTION)
    answer_of(page, 0)
    body = ask(page, "And the colours?")
    text = answer_of(page, 1)
    env = {**os.environ, "VIDTT_API_KEY": KEY}

    page.get_by_role("button", name="Copy as curl").click()
    expect(page.get_by_role("status").filter(has_text="Copied")).to_have_text(
        "Copied the curl command."
    )
    curl = page.get_by_label("Request code").input_value()
    assert curl == page.evaluate("navigator.clipboard.readText()")
    assert '-H "Authorization: Bearer $VIDTT_API_KEY"' in curl and KEY not in curl
    assert curl.startswith("# upload:... is the video uploaded from the page; the server keeps")
    assert "--data-binary @video.mp4" in curl and PLACEHOLDER not in curl
    sent = json.loads(curl.split("<<'EOF'\n", 1)[1].rsplit("\nEOF", 1)[0])
    assert sent == body and video_url(sent).startswith("upload:")  # runs as it is
    if shutil.which("curl") and shutil.which("bash"):
        run = subprocess.run(
            ["bash", "-c", curl],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr
        events = [line[6:] for line in run.stdout.splitlines() if line.startswith("data: {")]
        pieces = [json.loads(e)["choices"] for e in events]
        assert "".join(c[0]["delta"].get("content") or "" for c in pieces if c) == text

    page.get_by_role("button", name="Copy as Python (openai)").click()
    expect(page.locator("#copy-status")).to_have_text("Copied the Python code.")
    code = page.get_by_label("Request code").input_value()
    assert 'api_key=os.environ["VIDTT_API_KEY"]' in code and "extra_body=" in code
    assert '"num_frames": 3' in code and video_url(body) in code and PLACEHOLDER not in code
    pytest.importorskip("openai")
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout == text + "\n"


def test_keyboard_and_labels(page, server, clip) -> None:
    sign_in(page)
    for label in [
        "API key", "Upload a video", "or a video URL", "or a file on the server", "Sampler",
        "Start (s)", "End (s)", "Max visual tokens", "Transcript", "Question",
        "Max answer tokens", "Temperature",
    ]:  # fmt: skip
        expect(page.get_by_label(label, exact=True)).to_have_count(1)
    expect(page.get_by_label("Frames", exact=True)).to_have_count(1)
    for name in [
        "Use key", "Use URL", "Use path", "Send", "Stop", "New conversation", "Copy as curl",
        "Copy as Python (openai)",
    ]:  # fmt: skip
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(1)
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea, button")]
              .filter(c => !(c.labels?.length || c.getAttribute("aria-label")
                             || (c.tagName === "BUTTON" && c.textContent.trim())))
              .map(c => c.outerHTML)"""
    )
    assert unnamed == []
    # Tab goes through the controls in the order they are shown, each visibly focused
    page.reload()  # (the key is kept in the tab) focus starts from the top of the page
    expect(page.locator("#model")).to_have_text(MODEL)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the question")).to_be_focused()
    expected = [
        "api-key",
        "use-key",
        "file",
        "url",
        "use-url",
        "path",
        "use-path",
        "sampler",
        "frames",
        "start",
        "end",
        "max-visual-tokens",
        "transcript",
        "question",
        "spans",
        "send",
        "new",
        "summary",
    ]  # fmt: skip  (Stop and the copy buttons are disabled until they can do something)
    if page.locator("#transcript-field").is_hidden():  # no transcriber installed here
        expected.remove("transcript")
    order = []
    for _ in expected:
        page.keyboard.press("Tab")
        focused = page.evaluate(
            """() => { const e = document.activeElement;
                 return [e.id || e.tagName.toLowerCase(), getComputedStyle(e).outlineStyle]; }"""
        )
        assert focused[1] != "none", focused
        order.append(focused[0])
    assert order == expected
    # Shift+Enter is a new line, Enter sends
    upload(page, clip)
    page.get_by_role("link", name="Skip to the question").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Question")).to_be_focused()
    page.keyboard.type("Two")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("lines?")
    expect(page.get_by_label("Question")).to_have_value("Two\nlines?")
    with page.expect_request(lambda r: r.url.endswith("/v1/chat/completions")) as sent:
        page.keyboard.press("Enter")
    assert sent.value.post_data_json["messages"][0]["content"][1]["text"] == "Two\nlines?"
    answer_of(page, 0)
    expect(page.get_by_label("Question")).to_have_value("")


def test_bad_input_says_so_and_leaves_nothing_on_disk(page, server, clip, tmp_path) -> None:
    before = files_in(server.tmp) | files_in(server.cache)
    sign_in(page)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/v1/" in r.url else None)
    alert = page.get_by_role("alert")

    notes = tmp_path / "notes.txt"
    notes.write_text("hello, this is not a video\n")
    page.get_by_label("Upload a video").set_input_files(notes)
    expect(alert).to_contain_text(server.upload_error(notes.read_bytes()))
    expect(alert).to_contain_text("is not a readable video")
    expect(page.locator("#strip figure")).to_have_count(0)
    expect(page.locator("#current")).to_have_text("No video chosen yet.")
    disguised = tmp_path / "notes.mp4"
    disguised.write_bytes(notes.read_bytes())
    page.get_by_label("Upload a video").set_input_files(disguised)
    expect(alert).to_contain_text("is not a readable video")
    expect(page.locator("#strip figure")).to_have_count(0)

    huge = tmp_path / "huge.mp4"
    huge.write_bytes(os.urandom((1 << 20) + 1))  # one byte over the server's limit
    sent.clear()
    page.get_by_label("Upload a video").set_input_files(huge)
    expect(alert).to_contain_text("huge.mp4 is 1 MB, over the 1 MB (1048576 bytes) this server")
    expect(alert).to_contain_text("Send large videos by URL, or as a file on the server.")
    expect(alert).to_contain_text("Nothing was sent.")
    assert sent == []

    refused = "http://127.0.0.1:9/x.mp4"
    page.get_by_label("or a video URL").fill(refused)
    page.get_by_role("button", name="Use URL").click()
    expect(alert).to_contain_text(server.error("/v1/frames", {"video": refused}))
    expect(alert).to_contain_text("private")
    page.get_by_label("or a video URL").fill("ftp://example.com/x.mp4")
    page.get_by_role("button", name="Use URL").click()
    expect(alert).to_have_text(re.compile("Give the video's http:// or https:// URL"))

    page.get_by_label("or a file on the server").fill("../../etc/passwd")
    page.get_by_role("button", name="Use path").click()
    expect(alert).to_contain_text("outside the server's allowed media folder")

    page.get_by_label("API key").fill("wrong")
    page.get_by_role("button", name="Use key").click()
    expect(alert).to_contain_text("The server refused the API key: incorrect API key")
    page.get_by_label("Question").fill(QUESTION)
    page.get_by_role("button", name="Send").click()
    expect(alert).to_contain_text("The server refused the API key")
    expect(page.locator(".turn")).to_have_count(0)
    expect(page.get_by_label("Question")).to_have_value(QUESTION)  # given back to try again
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#alert")).to_be_empty()
    assert files_in(server.tmp) | files_in(server.cache) == before  # nothing left on disk

    page.get_by_label("API key").fill(KEY)
    page.get_by_role("button", name="Use key").click()
    page.get_by_label("or a file on the server").fill(clip.name)
    page.get_by_role("button", name="Use path").click()
    expect(page.locator("#strip figure")).to_have_count(4)
    expect(page.locator("#alert")).to_be_empty()

    # an answer's error stays while the strip refreshes (only the strip's own are cleared)
    page.get_by_text("Answer settings").click()
    page.get_by_label("Max answer tokens").fill("5000")  # over the 2048-token context
    said = server.error("/v1/chat/completions", ask(page, QUESTION))
    expect(alert).to_contain_text(said)
    refreshed(page, lambda: page.get_by_label("Frames", exact=True).fill("3"), num_frames=3)
    expect(page.locator("#strip figure")).to_have_count(3)
    expect(alert).to_contain_text(said)
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#alert")).to_be_empty()


def test_a_server_without_uploads_gets_the_file_in_each_request(browser, clip, tmp_path) -> None:
    """`--max-uploads-mb 0`: the page sends the file as a data: URL, within the body limit."""
    with launched(tmp_path, clip, "--max-uploads-mb", "0") as served:
        context = browser.new_context(base_url=served.base)
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        try:
            sign_in(page)
            expect(page.locator("#file-hint")).to_contain_text("up to about 766.5 KB; send large")
            upload(page, clip)
            assert strip_times(page) == [f["time"] for f in served.frames(data_url(clip))["frames"]]
            body = ask(page, QUESTION)
            assert video_url(body) == data_url(clip)
            answer = answer_of(page, 0)
            assert answer == plain(served, body)["choices"][0]["message"]["content"]
            page.get_by_role("button", name="Copy as curl").click()
            curl = page.get_by_label("Request code").input_value()
            assert curl.startswith("# The video was uploaded from the page: put your file's URL")
            assert PLACEHOLDER in curl and "data:" not in curl
        finally:
            context.close()


def test_static_files_and_no_ui(llava) -> None:
    """In process: the page's headers and files, nothing else reachable; no page without ui."""
    from starlette.testclient import TestClient

    from vidtt.serve.app import ServeSettings, create_app

    client = TestClient(create_app(llava, ServeSettings()))  # (its lifespan not run)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert 'src="/ui/app.js"' in page.text and "<style" not in page.text
    assert " style=" not in page.text and "<script>" not in page.text
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from elsewhere
    for name, kind in [("app.js", "text/javascript"), ("style.css", "text/css"),
                       ("icon.svg", "image/svg+xml")]:  # fmt: skip
        answer = client.get(f"/ui/{name}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
        assert answer.headers["cache-control"] == "no-cache"
        again = client.get(f"/ui/{name}", headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert "http" not in client.get("/ui/style.css").text  # no fonts or images from elsewhere
    for path in ["/ui/ui.py", "/ui/../ui.py", "/ui/..%2Fui.py", "/ui/%2e%2e/app.py", "/ui/",
                 "/ui/app.js/x", "/index.html"]:  # fmt: skip
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "error" in answer.json()
    assert client.head("/").status_code == 200
    off = TestClient(create_app(llava, ServeSettings(ui=False)))
    assert off.get("/").status_code == 404 and off.get("/ui/app.js").status_code == 404


@pytest.mark.skipif(not os.environ.get("VIDTT_SCREENSHOTS"), reason="VIDTT_SCREENSHOTS=1 only")
def test_screenshots_for_the_docs(browser, server, clip) -> None:
    """docs/images/serve-desktop.png (1280x900) and serve-phone.png (390x844)."""
    for name, width, height in [("desktop", 1280, 900), ("phone", 390, 844)]:
        context = browser.new_context(
            viewport={"width": width, "height": height}, base_url=server.base,
            color_scheme="light", device_scale_factor=1,
        )  # fmt: skip
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(f"sessionStorage.setItem('vidtt-api-key', {json.dumps(KEY)})")
        tab = context.new_page()
        tab.goto("/")
        expect(tab.locator("#model")).to_have_text(MODEL)
        upload(tab, clip)
        tab.get_by_label("Frames", exact=True).fill("8")
        tab.get_by_label("Max visual tokens").fill("160")
        tab.get_by_text("Answer settings").click()
        tokens = tab.get_by_label("Max answer tokens")
        refreshed(tab, lambda: tokens.fill("24"), max_tokens=24)  # noqa: B023 (called at once)
        expect(tab.locator("#strip figure")).to_have_count(8)
        ask(tab, QUESTION)
        answer_of(tab, 0)
        tab.get_by_label("Question").fill("Which colours do you see?")
        tab.locator("body").click(position={"x": 2, "y": 2})  # (no focus ring in the picture)
        DOCS.mkdir(parents=True, exist_ok=True)
        if name == "desktop":
            tab.screenshot(path=str(DOCS / "serve-desktop.png"))
        else:  # from the strip to the answer: the page is long at phone width
            top, bottom = tab.evaluate(
                """() => [document.getElementById("strip-title").getBoundingClientRect().top,
                          document.querySelector(".turn.assistant").getBoundingClientRect().bottom]
                         .map(y => y + window.scrollY)"""
            )
            clip = {"x": 0, "y": top - 24, "width": width, "height": bottom - top + 48}
            tab.screenshot(path=str(DOCS / "serve-phone.png"), full_page=True, clip=clip)
        context.close()


def in_view(page: Any, selector: str, within: str = "#log") -> bool:
    """Whether the whole of the last `selector` is inside `within`'s visible box."""
    return bool(
        page.evaluate(
            """([selector, within]) => {
                const all = document.querySelectorAll(selector);
                const box = all[all.length - 1].getBoundingClientRect();
                const view = document.querySelector(within).getBoundingClientRect();
                const inside = box.top >= view.top - 0.5 && box.bottom <= view.bottom + 0.5;
                return box.height > 0 && inside;
            }""",
            [selector, within],
        )
    )


def test_copy_stays_in_view_after_a_long_answer(page, server, clip) -> None:
    """An answer longer than the conversation's box scrolls it as it streams; once done, its
    meta line and Copy button are in view too (they appear after the last text came)."""
    sign_in(page)
    upload(page, clip)
    page.get_by_text("Answer settings").click()
    page.get_by_label("Max answer tokens").fill("400")
    page.get_by_label("Temperature").fill("0")
    ask(page, QUESTION)
    answer_of(page, 0)
    log = page.locator("#log")
    assert log.evaluate("e => e.scrollHeight > e.clientHeight")  # longer than its box
    copy = page.locator(".turn.assistant").last.get_by_role("button", name="Copy the answer")
    expect(copy).to_be_visible()
    assert in_view(page, ".turn.assistant .copy-answer"), "the Copy button is scrolled out"
    copy.click()
    expect(copy).to_have_text("Copied")


def test_a_repeated_error_is_shown_anew(page, server) -> None:
    """The same error twice in a row is not left looking unchanged: it says how many times it
    came, and flashes again; a different error, or a cleared one, starts over."""
    sign_in(page)
    alert = page.get_by_role("alert")
    refused = "http://127.0.0.1:9/x.mp4"
    said = server.error("/v1/frames", {"video": refused})
    page.get_by_label("or a video URL").fill(refused)
    use = page.get_by_role("button", name="Use URL")
    use.click()
    expect(alert).to_have_text(said + "×")  # the text, and the Dismiss button's ×
    expect(page.locator("#alert")).to_have_class(re.compile(r"\bflash\b"))
    page.evaluate("document.querySelector('#alert').classList.remove('flash')")
    use.click()
    expect(alert).to_have_text(f"{said} (2 times)×")
    expect(page.locator("#alert")).to_have_class(re.compile(r"\bflash\b"))  # flashed again
    use.click()
    expect(alert).to_have_text(f"{said} (3 times)×")
    page.get_by_label("or a file on the server").fill("../../etc/passwd")
    page.get_by_role("button", name="Use path").click()
    expect(alert).to_contain_text("outside the server's allowed media folder")
    expect(alert).not_to_contain_text("times)")
    page.get_by_role("button", name="Dismiss").click()
    expect(page.locator("#alert")).to_be_empty()
    use.click()
    expect(alert).to_have_text(said + "×")
