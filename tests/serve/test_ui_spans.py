"""The time spans of an answer on the page at / of `vidtt serve` (headless Chromium, a real
server with the tiny llava model): "Find when" sends `spans: true`; the answer's `vidtt.spans`
are drawn on the strip's time bar and listed under the answer, and choosing one shows its
frames. The tiny random model names no real times, so only the chat request is answered here,
with a stream built by the server's own chunk code and spans in its last chunk.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import test_ui_browser as ui
from test_ui_browser import MODEL, QUESTION, answer_of, ask, clock, expect, sign_in, upload

pytestmark = pytest.mark.slow
clip, server, browser, page = ui.clip, ui.server, ui.browser, ui.page  # its fixtures, shared

HOSTILE = '<img src="x" onerror="window.hacked = 1"> the ball stops'
ANSWER = ["The ball rolls ", "in at 0.6 s ", "and stops."]


def stream_of(spans: list[dict[str, Any]] | None) -> str:
    """A streamed answer as `vidtt serve` sends it: the role, the pieces, the last chunk (finish
    reason, usage, vidtt's details with `spans` when given), the usage chunk, [DONE]."""
    from vidtt.serve.chat_streams import DONE
    from vidtt.serve.responses import Chunks, delta
    from vidtt.serve.streams import sse

    chunks = Chunks.new(MODEL, include_usage=True)
    usage = {
        "prompt_tokens": 300, "completion_tokens": 9, "total_tokens": 309,
        "prompt_tokens_details": {"cached_tokens": 0}, "visual_tokens": 256,
    }  # fmt: skip
    details: dict[str, Any] = {"videos": [], "timings": {}, "formatter": "llava"}
    if spans is not None:
        details["spans"] = spans
    events = [chunks.first(), *(chunks.piece(text) for text in ANSWER)]
    events += [chunks.chunk([delta({}, "stop")], usage, details), chunks.chunk([], usage)]
    return "".join(sse(event) for event in events) + DONE


class Answering:
    """Answers the page's chat requests (only those) with `stream_of(self.spans)`; keeps the
    bodies the page sent."""

    def __init__(self, page: Any) -> None:
        self.spans: list[dict[str, Any]] | None = None
        self.bodies: list[dict[str, Any]] = []
        page.route("**/v1/chat/completions", self.fulfil)

    def fulfil(self, route: Any) -> None:
        self.bodies.append(route.request.post_data_json)
        headers = {"content-type": "text/event-stream", "cache-control": "no-cache"}
        route.fulfill(status=200, headers=headers, body=stream_of(self.spans))


def shown(page: Any, video: Path) -> dict[str, Any]:
    """Sign in and upload `video`; the /v1/frames answer the strip shows."""
    sign_in(page)
    with page.expect_response(lambda r: r.url.endswith("/v1/frames")) as frames:
        upload(page, video)
    return frames.value.json()  # type: ignore[no-any-return]


def span_of(start: float, end: float, text: str) -> dict[str, Any]:
    """A span as the server sends it (a vidtt Span, dumped)."""
    from vidtt.types import Span

    return Span(start=round(start, 3), end=round(end, 3), text=text).model_dump()


def label(span: dict[str, Any]) -> str:
    return f"{clock(span['start'])} – {clock(span['end'])}: {span['text']}"


def marked(page: Any) -> tuple[list[int], list[int]]:
    """The strip's frames (by position) highlighted, and those dimmed."""
    classes = page.locator("#strip figure").evaluate_all("all => all.map(f => f.className)")
    return (
        [i for i, c in enumerate(classes) if "in-span" in c.split()],
        [i for i, c in enumerate(classes) if "out-span" in c.split()],
    )


def test_spans_are_drawn_listed_and_show_their_frames(page, clip) -> None:
    answering = Answering(page)
    data = shown(page, clip)
    times, duration = [f["time"] for f in data["frames"]], data["video"]["duration"]
    assert len(times) == 4 and duration
    middle = span_of(times[1] - 0.01, times[2] + 0.01, "the ball rolls in")
    last = span_of(times[3] - 0.01, duration, HOSTILE)
    answering.spans = spans = [middle, last]
    page.get_by_label("Find when (time spans)").check()
    body = ask(page, QUESTION)
    assert body["spans"] is True and body["stream"] is True
    assert answer_of(page, 0) == "".join(ANSWER)

    # on the time bar: one band a span, where it lies in the video, labelled with it
    bands = page.locator("#track .span-band")
    expect(bands).to_have_count(2)
    for i, span in enumerate(answering.spans):
        band = bands.nth(i)
        expect(band).to_have_attribute("title", label(span))
        expect(band).to_have_attribute("aria-label", label(span))
        left, width = band.evaluate("b => [b.style.left, b.style.width]")
        assert float(left.removesuffix("%")) == pytest.approx(span["start"] / duration * 100)
        width_of = (span["end"] - span["start"]) / duration * 100
        assert float(width.removesuffix("%")) == pytest.approx(width_of)
    expect(page.get_by_role("img", name=label(middle))).to_have_count(1)
    # listed under the answer; the hostile text is shown as text
    buttons = page.locator(".turn.assistant .spans button.span")
    expect(buttons).to_have_text(
        [f"{clock(s['start'])} – {clock(s['end'])} {s['text']}" for s in spans]
    )
    expect(buttons.nth(1).locator(".span-text")).to_have_text(HOSTILE)
    assert page.locator("#log img, #shots img").count() == 0
    assert page.evaluate("window.hacked") is None

    # choosing a span: its frames highlighted, the others dimmed; again: all frames
    assert marked(page) == ([], [])
    buttons.nth(0).click()
    expect(buttons.nth(0)).to_have_attribute("aria-pressed", "true")
    expect(bands.nth(0)).to_have_class(re.compile(r"\bchosen\b"))
    assert marked(page) == ([1, 2], [0, 3])
    expect(page.locator("#span-note")).to_contain_text("2 of 4 frames in it")
    buttons.nth(1).focus()  # by keyboard
    page.keyboard.press("Enter")
    expect(buttons.nth(1)).to_have_attribute("aria-pressed", "true")
    expect(buttons.nth(0)).to_have_attribute("aria-pressed", "false")
    assert marked(page) == ([3], [0, 1, 2])
    page.keyboard.press("Space")  # the same span again
    expect(buttons.nth(1)).to_have_attribute("aria-pressed", "false")
    assert marked(page) == ([], [])
    expect(page.locator("#span-note")).to_be_empty()
    bands.nth(0).click()  # on the bar
    assert marked(page) == ([1, 2], [0, 3])
    page.get_by_role("button", name="All frames").click()
    assert marked(page) == ([], [])
    expect(page.get_by_role("button", name="All frames")).to_be_hidden()

    # on a phone the strip is far above the answer: choosing a span scrolls its frames in
    page.set_viewport_size({"width": 390, "height": 700})
    buttons.nth(0).scroll_into_view_if_needed()
    expect(page.locator("#strip figure").nth(1)).not_to_be_in_viewport()
    buttons.nth(0).click()
    expect(page.locator("#strip figure.in-span").first).to_be_in_viewport()

    # a reload keeps them
    page.reload()
    expect(page.locator(".turn.assistant .spans button.span")).to_have_count(2)
    expect(page.locator("#track .span-band")).to_have_count(2)
    expect(page.get_by_label("Find when (time spans)")).to_be_checked()


def test_no_spans_asked_and_none_named(page, clip) -> None:
    answering = Answering(page)
    shown(page, clip)
    body = ask(page, QUESTION)  # the box unticked: not asked, none in the answer
    assert "spans" not in body
    answer_of(page, 0)
    expect(page.locator(".turn.assistant .spans")).to_have_count(0)
    expect(page.locator("#track")).to_be_visible()
    expect(page.locator("#track .span-band")).to_have_count(0)

    answering.spans = []  # asked, and the answer named no time
    page.get_by_label("Find when (time spans)").check()
    assert ask(page, "When does it stop?")["spans"] is True
    answer_of(page, 1)
    expect(page.locator(".turn.assistant").nth(1).locator(".spans")).to_have_text(
        "The answer named no time."
    )
    expect(page.locator("#track .span-band")).to_have_count(0)
    expect(page.locator("#alert")).to_be_empty()
    assert len(answering.bodies) == 2
