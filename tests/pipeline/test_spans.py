"""Time spans read from answers (vidtt.pipeline.spans): every family's ways of writing times,
what is not a time, bounded work on hostile text, and the spans written as lines/JSON/SRT/VTT."""

from __future__ import annotations

import itertools
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidtt.errors import OptionsError
from vidtt.pipeline.spans import MAX_READ, SPAN_FORMATS, format_spans, read_spans
from vidtt.types import Span

EIGHT = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]  # frames at 1 fps
QWEN3_TIMES = [0.5, 2.5, 4.5, 6.5, 8.5, 10.5, 12.5, 14.5]  # one stamp per 2-frame group
HALF = [t / 2 for t in range(16)]  # 2 fps, 8 seconds


def pairs(text: str, **kw: object) -> list[tuple[float, float]]:
    return [(s.start, s.end) for s in read_spans(text, **kw)]  # type: ignore[arg-type]


# family, answer (as the family writes it), times, expected spans
MATRIX = [
    # Qwen2.5-VL: absolute seconds (mRoPE aligned to time), sentences and the cookbook's JSON
    (
        "qwen2_5_vl",
        "The described content occurs from 8.0 to 15.5 seconds.",
        (),
        [(8.0, 15.5)],
    ),
    (
        "qwen2_5_vl",
        '```json\n[\n  {"start_time": "00:21.00", "end_time": "00:49.00", "description": '
        '"A man chops onions."},\n  {"start_time": "01:02.50", "end_time": "01:10.00", '
        '"description": "He fries them."}\n]\n```',
        (),
        [(21.0, 49.0), (62.5, 70.0)],
    ),
    (
        "qwen2_5_vl",
        '[{"start": 12.5, "end": 20.0, "event": "the dog jumps"}]',
        (),
        [(12.5, 20.0)],
    ),
    ("qwen2_5_vl", "The event happens in 12.5 - 20.0 seconds.", (), [(12.5, 20.0)]),  # TimeLens
    ("qwen2_5_vl", "[3.2, 7.9]", (), [(3.2, 7.9)]),  # grounding finetunes' bare pair
    ("qwen2_vl", "The goal is scored between 3 and 7 seconds.", (), [(3.0, 7.0)]),
    # Qwen3-VL: its own <t seconds> markers, hh:mm:ss, the cookbook's mm:ss.ff JSON
    (
        "qwen3_vl",
        "<3.5 seconds> A man opens the door. <7.5 seconds> He sits down.",
        QWEN3_TIMES,
        [(3.5, 4.5), (7.5, 8.5)],
    ),
    (
        "qwen3_vl",
        "The person picks up the cup from <12.0 seconds> to <15.0 seconds>.",
        (),
        [(12.0, 15.0)],
    ),
    ("qwen3_vl", "The light turns green at <6.5>.", QWEN3_TIMES, [(6.5, 8.5)]),
    ("qwen3_vl", "00:00:05 - 00:00:09: a dog runs across the yard.", (), [(5.0, 9.0)]),
    (
        "qwen3_vl",
        '[{"start": "00:02.50", "end": "00:04.00", "description": "wave"}, '
        '{"start": "00:10.00", "end": "00:12.25", "description": "bow"}]',
        (),
        [(2.5, 4.0), (10.0, 12.25)],
    ),
    ("qwen3_vl", "[[2.0, 4.5], [10.0, 12.0]]", (), [(2.0, 4.5), (10.0, 12.0)]),  # TimeLens2
    ("qwen3_5", '{"time": "00:05-00:10", "description": "a goal"}', (), [(5.0, 10.0)]),
    # Qwen asked in Chinese answers in Chinese units
    ("qwen2_5_vl", "从12秒到15秒，一个人走进房间。", (), [(12.0, 15.0)]),
    ("qwen3_vl", "在1分05秒时他坐下。", (), [(65.0, 65.0)]),
    (
        "qwen3_vl",
        "0:00-0:05 画面展示了一座桥梁。\n0:06-0:10 画面切换到一座高塔。",
        (),
        [(0.0, 5.0), (6.0, 10.0)],
    ),
    # LLaVA-style prose, frames as images
    ("llava", "The car turns left at around 0:12.", (), [(12.0, 12.0)]),
    ("llava", "The car turns left at around 0:12.", [0, 4, 8, 12, 16], [(12.0, 16.0)]),
    ("llava", "From 00:01:05 to 00:01:10, the man ties his shoes.", (), [(65.0, 70.0)]),
    ("llava", "In frames 3 to 5 the ball is in the air.", EIGHT, [(2.0, 5.0)]),
    (
        "llava_onevision",
        "The dog appears at 3.00s and leaves at 5.50s.",
        (),
        [(3.0, 3.0), (5.5, 5.5)],
    ),
    (
        "video_llava",
        "In the 2nd frame a woman waves; in the last frame she leaves.",
        EIGHT,
        [(1.0, 2.0), (7.0, 8.0)],
    ),
    (
        "llava_next_video",
        "It happens at 1 minute 5 seconds and again at 1m20s.",
        (),
        [(65.0, 65.0), (80.0, 80.0)],
    ),
    # InternVL labels frames "Frame1: <image>"
    (
        "internvl",
        "Frame3: a woman waves. From Frame5 to Frame6 she walks away.",
        EIGHT,
        [(2.0, 3.0), (4.0, 6.0)],
    ),
    # SmolVLM and Gemma 4 are shown mm:ss stamps and answer with them
    (
        "smolvlm",
        "The man starts running at 00:03 and stops at 00:07.",
        EIGHT,
        [(3.0, 4.0), (7.0, 8.0)],
    ),
    ("gemma4", "00:02 - 00:04: a cat jumps onto the table.", EIGHT, [(2.0, 4.0)]),
    # GLM-4V (integer seconds), VideoLLaMA3 ("Time 12.0s:"), ERNIE (hh:mm:ss.ff drawn on frames)
    ("glm4v", "The ball enters the net at 6s.", EIGHT, [(6.0, 7.0)]),
    ("video_llama_3", "Time 4.0s: the man raises his hand.", HALF, [(4.0, 4.5)]),
    ("ernie4_5_vl_moe", "At 00:00:02.50 the bird takes off.", HALF, [(2.5, 3.0)]),
    # Molmo2 points in video: "time idx x y" groups
    (
        "molmo2",
        'Counting the dogs: <points coords="1.5 1 574 375;2.0 1 580 380" alt="dog">dog</points>',
        HALF,
        [(1.5, 2.5)],
    ),
    # several spans, overlapping or touching ones merged, a reversed one read backwards
    ("llava", "It runs from 2 to 5 seconds and again from 4 to 8 seconds.", (), [(2.0, 8.0)]),
    ("llava", "0:02-0:04 the cat sits. 0:04-0:06 it sleeps.", (), [(2.0, 6.0)]),
    ("llava", "The door opens at 0:10 and closes at 0:40.", (), [(10.0, 10.0), (40.0, 40.0)]),
    ("llava", "The sign is visible from 20 to 10 seconds.", (), [(10.0, 20.0)]),
    ("llava", "The segment [12:00-13:00] shows the goal.", (), [(720.0, 780.0)]),
    ("llava", "at 1:05:30.5 the credits roll", (), [(3930.5, 3930.5)]),
    ("llava", "between 2 and 3 minutes", (), [(120.0, 180.0)]),
    ("llava", "between 0:10 and 0:20, and [0:30, 0:40]", (), [(10.0, 20.0), (30.0, 40.0)]),
    ("llava", "The cup falls at the 12-second mark.", (), [(12.0, 12.0)]),
    (
        "qwen3_vl",
        '{"objects": [{"name": "cup", "first_appears": "00:01.00", "last_appears": "00:05.00"}]}',
        (),
        [(1.0, 5.0)],
    ),
]


@pytest.mark.parametrize(("family", "answer", "times", "expected"), MATRIX)
def test_each_family_answer_is_read(
    family: str, answer: str, times: list[float], expected: list[tuple[float, float]]
) -> None:
    assert pairs(answer, times=times, family=family) == expected


def test_unknown_or_no_family_reads_the_generic_forms() -> None:
    answer = "The dog barks at 0:04 and again from 6 to 8 seconds."
    expected = [(4.0, 4.0), (6.0, 8.0)]
    assert pairs(answer) == pairs(answer, family="some_new_vlm") == expected


def test_family_forms_are_read_only_for_their_family() -> None:
    assert pairs("[3.2, 7.9]", family="llava") == []  # a bare pair may be coordinates
    assert pairs("The light turns green at <6.5>.", family="llava") == []
    molmo = '<points coords="1.5 1 574 375">dog</points>'
    assert pairs(molmo, family="llava") == []
    assert pairs(molmo, family="molmo2") == [(1.5, 1.5)]


def test_json_texts_are_the_descriptions_and_prose_texts_the_sentences() -> None:
    answer = (
        '[{"start_time": "00:21.00", "end_time": "00:49.00", "description": "A man chops '
        'onions."}]\nLater, at 1:30, he serves the dish. Nothing else happens.'
    )
    spans = read_spans(answer)
    assert [s.text for s in spans] == ["A man chops onions.", "Later, at 1:30, he serves the dish."]
    assert all(isinstance(s, Span) for s in spans)


def test_merged_spans_join_their_sentences() -> None:
    spans = read_spans("0:02-0:04 the cat sits.\n0:04-0:06 it sleeps.")
    assert [(s.start, s.end, s.text) for s in spans] == [
        (2.0, 6.0, "0:02-0:04 the cat sits. 0:04-0:06 it sleeps.")
    ]


def test_instants_last_until_the_next_frame() -> None:
    times = [0.0, 2.0, 4.0, 6.0]
    assert pairs("at 3 seconds", times=times) == [(3.0, 4.0)]  # between frames
    assert pairs("at 4 seconds", times=times) == [(4.0, 6.0)]  # on a frame
    assert pairs("at 6 seconds", times=times) == [(6.0, 8.0)]  # the last: plus the gap
    assert pairs("at 6 seconds", times=[6.0]) == [(6.0, 6.0)]  # one frame: no gap known
    assert pairs("at 6 seconds") == [(6.0, 6.0)]  # no times: nothing invented


def test_frame_numbers_need_the_frames_shown() -> None:
    assert pairs("In frame 3 the dog sits.") == []
    assert pairs("In frame 9 the dog sits.", times=EIGHT) == []  # only 8 were shown
    assert pairs("In frames 2, 3 and 6 the dog sits.", times=EIGHT) == [(1.0, 3.0), (5.0, 6.0)]
    assert pairs("frame #8", times=EIGHT) == [(7.0, 8.0)]
    assert pairs("the first frame", times=EIGHT) == [(0.0, 1.0)]


def test_bounds_clamp_and_drop() -> None:
    answer = "It starts from 8 to 12 seconds. At 0:30 it ends. It began at 0:02."
    assert pairs(answer, bounds=(5.0, 10.0)) == [(8.0, 10.0)]
    assert pairs("from 1 to 6 seconds", bounds=(5.0, 10.0)) == [(5.0, 6.0)]
    assert pairs("at 10 seconds", times=[5.0, 7.5, 10.0], bounds=(5.0, 10.0)) == []  # no length
    assert pairs("at 10 seconds", bounds=(5.0, 10.0)) == [(10.0, 10.0)]  # an instant, kept


NOT_TIMES = [
    "",
    "No particular moment is mentioned.",
    "There are 2 people in the video.",
    "The answer is option B.",
    "Answer: (C) 3",
    "This happened in 2019.",
    "The app runs version 3.5 now.",
    "The score was 3 to 2 at the end.",
    "He counted 12 - 15 birds.",
    "The event happens in 12.5 - 20.0.",  # no unit: a bare range is not read
    "from 10 to 20",  # VTimeLLM's relative frame indices: not guessed
    "It covers about 80% of the video.",
    "The video is 30 seconds long.",
    "It lasts for 2 minutes.",
    "Every 5 seconds a car passes.",
    "It took 12 seconds to open.",
    "During the first 10 seconds nothing happens.",  # relative to the start: not guessed
    "Three seconds later he falls.",
    "5 seconds later he falls.",
    "The meeting is at 3:30 pm.",
    "Music from the 1990s and the 80s plays.",
    "The tower is 5 m tall and 300 mm wide.",
    "Steps 1-3 are shown, 4 to 6 follow.",
    "The aspect ratio is 16:9.",
    "It plays at 30 fps with 2 frames per second sampled.",
    "The pair [120, 340] is marked.",
    "他得了3分。",  # points, not minutes
    "持续了2分钟。",  # lasted two minutes
    "5秒后他跳起来。",  # five seconds later
    "视频长30秒。",  # the video is 30 seconds long
]


@pytest.mark.parametrize("answer", NOT_TIMES)
@pytest.mark.parametrize("family", [None, "llava", "qwen3_vl", "internvl", "molmo2"])
def test_numbers_that_are_not_times_give_nothing(answer: str, family: str | None) -> None:
    got = pairs(answer, times=EIGHT, family=family)
    if family == "qwen3_vl" and answer == "The pair [120, 340] is marked.":
        assert got == [(120.0, 340.0)]  # a qwen grounding pair; bounds would drop it
        assert pairs(answer, family=family, bounds=(0.0, 8.0)) == []
    else:
        assert got == []


def test_qwen_point_coordinates_are_not_times() -> None:
    answer = '[{"point_2d": [120, 340], "label": "cup"}, {"bbox_2d": [1, 2, 3, 4]}]'
    assert pairs(answer, family="qwen2_5_vl") == []
    assert pairs('{"span": [1, 3]}', family="qwen2_5_vl") == [(1.0, 3.0)]


M = 1_000_000
HOSTILE = {
    "digits": "1" * M,
    "spaced digits": "1 " * (M // 2),
    "instants": "1s " * (M // 3),
    "clocks": "0:01 " * (M // 5),
    "bare ranges": "1-2 " * (M // 4),
    "unit ranges": "1 - 2 seconds, " * (M // 15),
    "braces": "{" * M,
    "open brace": "{" + "a" * M,
    "keys": '{"start": 1, ' * (M // 13),
    "objects": '{"start": 1, "end": 2}' * (M // 22),
    "pairs": "[1, 2]" * (M // 6),
    "frames": "frame 1, " * (M // 9),
    "frame list": "frames 1" + ", 2" * (M // 3),
    "colons": "1:" * (M // 2),
    "points": '<points coords="' + "1 1 100 100;" * (M // 12),
    "markers": "<1>" * (M // 3),
    "hms": "1h 1m " * (M // 6),
    "dots": "1." * (M // 2),
    "lines": "a\n" * (M // 2),
    "from": "from 1 to " * (M // 10),
    "ordinals": "the first frame " * (M // 16),
    "prose": "The man walks in at 0:12 and leaves at 0:15. There are 2 people. " * (M // 66),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_answers_are_read_in_bounded_time(name: str) -> None:
    text = HOSTILE[name]
    for family in (None, "qwen3_vl", "molmo2"):
        began = time.perf_counter()
        spans = read_spans(text, times=HALF, family=family, bounds=(0.0, 8.0))
        took = time.perf_counter() - began
        assert took < 1.0, f"{name} ({family}): {took:.2f} s"
        assert len(spans) <= MAX_READ


WORDS = ["at", "from", "to", "and", "between", "frame", "seconds", "s", "0:12", "1:05", "3",
         "12.5", "-", ",", ".", "\n", "[", "]", "<", ">", "{", "}", '"start":', '"end":', "2s",
         "the", "last", "minutes", "1m05s", "<4.5 seconds>", "frames", "7"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(WORDS), max_size=40),
    st.sampled_from([None, "qwen3_vl", "molmo2", "internvl"]),
    st.lists(st.floats(0, 100), max_size=10),
)
def test_spans_are_ordered_apart_and_inside_bounds(
    words: list[str], family: str | None, times: list[float]
) -> None:
    spans = read_spans(" ".join(words), times=times, family=family, bounds=(1.0, 60.0))
    for span in spans:
        assert 1.0 <= span.start <= span.end <= 60.0
    for before, after in itertools.pairwise(spans):
        assert before.end < after.start  # touching or overlapping ones were merged


SPANS = [
    Span(start=12.0, end=15.5, text="A man enters."),
    Span(start=65.25, end=70.0, text="He sits\ndown --> slowly."),
    Span(start=80.0, end=80.0, text=""),
]


def test_lines_format_reads_like_a_clock() -> None:
    assert format_spans(SPANS, "lines") == (
        "0:12.0 - 0:15.5  A man enters.\n"
        "1:05.3 - 1:10.0  He sits down --> slowly.\n"
        "1:20.0 - 1:20.0\n"
    )
    long = [Span(start=3599.0, end=3725.5, text="The end.")]
    assert format_spans(long, "lines") == "0:59:59.0 - 1:02:05.5  The end.\n"
    assert format_spans([], "lines") == ""


def test_json_format_is_a_list_of_spans() -> None:
    body = json.loads(format_spans(SPANS, "json"))
    assert body[0] == {"start": 12.0, "end": 15.5, "text": "A man enters."}
    assert [Span(**item) for item in body] == SPANS


def test_srt_and_vtt_formats_are_cues() -> None:
    srt = format_spans(SPANS[:2], "srt")
    assert srt == (
        "1\n00:00:12,000 --> 00:00:15,500\nA man enters.\n\n"
        "2\n00:01:05,250 --> 00:01:10,000\nHe sits down -> slowly.\n"
    )
    vtt = format_spans(SPANS, "vtt")
    assert vtt.startswith("WEBVTT\n\n1\n00:00:12.000 --> 00:00:15.500\nA man enters.\n")
    assert "00:01:20.000 --> 00:01:20.000\n...\n" in vtt  # no text: a placeholder cue text
    assert vtt.count(" --> ") == 3  # the arrow inside a text was rewritten


def test_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(OptionsError, match="use lines, json, srt, vtt"):
        format_spans(SPANS, "ass")
    assert SPAN_FORMATS == ("lines", "json", "srt", "vtt")
