"""The library on the page at / of `vidtt serve --library` (headless Chromium, a real server with
the tiny llava model and a library indexed by `vidtt index` with the `colour` embedder): the
search box appears, a search shows the red moment with its thumbnail loaded (fetched with the
key), choosing it plays its video from the moment's start, and asking the library about that
video answers with the moments it saw.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_ui_browser as ui
from test_ui_browser import VIDTT, clock, expect, launched, sign_in

pytestmark = pytest.mark.slow
clip, browser, page = ui.clip, ui.browser, ui.page  # its fixtures, shared
pytest.importorskip("lancedb")


@pytest.fixture(scope="module")
def server(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ui.Served]:
    """`vidtt serve` as the page's tests start it, with a library of a red-square video."""
    from vidtt.testing import make_square_video
    from vidtt.testing.embedders import colour_plugin

    root = tmp_path_factory.mktemp("ui-library")
    env = colour_plugin(root / "site")
    videos = root / "videos"
    videos.mkdir()
    make_square_video(videos / "red.mp4", (4.0, 7.0), (220, 30, 30))
    library = root / "lib"
    args = [VIDTT, "index", str(videos), "--library", str(library), "--embedder", "colour"]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", env["PYTHONPATH"])
        with launched(root / "serve", clip, "--library", str(library)) as served:
            yield served


def natural_width(image: Any) -> int:
    return int(image.evaluate("i => i.complete ? i.naturalWidth : 0"))


def test_search_shows_the_red_moment_and_plays_it(page: Any) -> None:
    expect(page.locator("#library")).to_be_hidden()
    sign_in(page)
    box = page.get_by_role("region", name="Search the library")
    expect(box).to_be_visible()
    expect(page.locator("#library-about")).to_contain_text("1 video, ")
    page.get_by_label("Find moments").fill("a red square")
    with page.expect_response(lambda r: r.url.endswith("/v1/library/search")) as sent:
        page.get_by_role("button", name="Search", exact=True).click()
    assert sent.value.request.post_data_json == {"query": "a red square", "limit": 12}
    results = page.locator("#library-results button.moment")
    expect(results).to_have_count(2)
    first = results.first
    expect(first.locator(".name")).to_have_text("red.mp4")
    expect(first.locator("time")).to_have_text(f"{clock(4.0)} – {clock(6.0)}")
    expect(first.locator(".kind")).to_have_text("frame")
    image = first.locator("img")
    page.wait_for_function("i => i.complete && i.naturalWidth > 0", arg=image.element_handle())
    assert natural_width(image) > 0 and image.get_attribute("src").startswith("blob:")

    first.click()
    expect(first).to_have_attribute("aria-pressed", "true")
    video = page.locator("#library-video")
    expect(page.locator("#library-playing")).to_contain_text(
        f"red.mp4, the moment from {clock(4.0)}"
    )
    src = str(video.get_attribute("src"))
    assert "/v1/library/videos/" in src and "signature=" in src and src.endswith("#t=4")
    page.wait_for_function(
        "v => v.readyState >= 1 && Math.abs(v.currentTime - 4) < 0.3", arg=video.element_handle()
    )
    assert video.evaluate("v => v.duration") == pytest.approx(12.0, abs=0.2)


def test_asking_the_library_about_the_opened_video(page: Any) -> None:
    sign_in(page)
    page.get_by_label("Find moments").fill("red")
    page.get_by_role("button", name="Search", exact=True).click()
    page.locator("#library-results button.moment").first.click()
    page.get_by_label("Only red.mp4").check()
    page.get_by_role("textbox", name="Ask the library").fill("Where is the red square?")
    with page.expect_response(lambda r: r.url.endswith("/v1/library/ask")) as sent:
        page.get_by_role("button", name="Ask the library").click()
    body = sent.value.request.post_data_json
    assert body["question"] == "Where is the red square?" and body["path"].endswith("/red.mp4")
    assert sent.value.status == 200, sent.value.text()
    answer = page.locator("#library-answer")
    expect(answer.locator(".hint").first).to_contain_text("from 1 moment")
    said = sent.value.json()
    expect(page.locator("#library-answer-text")).to_have_text(said["answer"])
    moment = page.locator("#library-answer-moments button.moment")
    expect(moment).to_have_count(1)
    expect(moment.locator(".kind")).to_have_text("moment 1")
    page.wait_for_function(
        "i => i.complete && i.naturalWidth > 0", arg=moment.locator("img").element_handle()
    )
