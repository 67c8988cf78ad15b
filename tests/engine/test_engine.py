"""The engine under the pipeline: cancellable streams, batches of mixed requests, shared engines,
the frame cache, and per-request errors."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

import vidtt
from vidtt.errors import FormatterError, OptionsError
from vidtt.media.frame_cache import FrameCache

QUESTION = "What is happening in this video?"
LONG = {"min_new_tokens": 400, "max_new_tokens": 400}


def test_leaving_a_stream_early_stops_generation_and_frees_the_engine(llava, videos) -> None:
    stream = llava.ask(videos["h264"], QUESTION, stream=True, **LONG)
    started = time.perf_counter()
    for _piece in stream:
        break  # the reader leaves after the first piece
    assert not llava.engine._lock.locked()
    assert stream.answer is not None and stream.answer.usage.generated_tokens < 50
    assert time.perf_counter() - started < 5
    assert llava.ask(videos["h264"], QUESTION, max_new_tokens=2).usage.generated_tokens == 2


def test_close_stops_a_stream_read_elsewhere(llava, videos) -> None:
    stream = llava.ask(videos["h264"], QUESTION, stream=True, **LONG)
    reader = iter(stream)
    next(reader)
    stream.close()
    rest = list(reader)
    assert stream.answer.usage.generated_tokens < 50 and len(rest) < 50


def test_a_stream_is_read_once(llava, videos) -> None:
    stream = llava.ask(videos["h264"], QUESTION, stream=True, max_new_tokens=4)
    assert "".join(stream) == stream.answer.text
    with pytest.raises(OptionsError, match="already read"):
        list(stream)


def test_an_unread_stream_costs_nothing(llava, videos) -> None:
    stream = llava.ask(videos["h264"], QUESTION, stream=True, **LONG)
    assert stream.answer is None and not llava.engine._lock.locked()
    del stream


def test_stream_pieces_come_token_by_token_and_stop_at_stop_strings(llava, videos) -> None:
    whole = llava.ask(videos["vp9"], QUESTION, max_new_tokens=12)
    stop = whole.text[len(whole.text) // 2 :][:2]
    pieces = list(llava.ask(videos["vp9"], QUESTION, stream=True, max_new_tokens=12))
    assert len(pieces) >= 4 and "".join(pieces) == whole.text
    stream = llava.ask(videos["vp9"], QUESTION, stream=True, max_new_tokens=12, stop=[stop])
    assert "".join(stream) == stream.answer.text == whole.text[: whole.text.find(stop)]


def test_a_waiting_caller_gets_the_engine_when_a_stream_is_cancelled(llava, videos) -> None:
    stream = llava.ask(videos["h264"], QUESTION, stream=True, **LONG)
    reader = iter(stream)
    next(reader)
    results: list[int] = []
    other = threading.Thread(
        target=lambda: results.append(
            llava.ask(videos["h264"], QUESTION, max_new_tokens=3).usage.generated_tokens
        )
    )
    other.start()
    time.sleep(0.2)
    assert not results  # waiting for the engine
    reader.close()  # what leaving a for loop does
    other.join(20)
    assert results == [3]


def test_pipelines_share_one_engine(llava, videos) -> None:
    other = vidtt.Pipeline(
        model=llava.config.model,
        backend="cpu",
        engine=llava.engine,
        sampler_options={"num_frames": 2},
        generation={"max_new_tokens": 5},
    )
    assert other.model is llava.model
    answer = other.ask(videos["h264"], QUESTION)
    assert len(answer.videos[0].indices) == 2 and answer.usage.generated_tokens == 5
    assert llava.ask(videos["h264"], QUESTION).usage.generated_tokens == 12  # its own settings


def test_batch_takes_per_request_options_and_keeps_order(llava, videos) -> None:
    requests = [
        {"videos": [videos["h264"]], "question": QUESTION, "max_new_tokens": 3},
        {"videos": [videos["vp9"]], "question": QUESTION, "num_frames": 2},
        {"video": videos["h264_gop"], "question": QUESTION, "fps": 1.0},
        {"videos": [videos["mpeg4"]], "question": QUESTION, "max_new_tokens": 3},
    ]
    answers = llava.batch(requests, batch_size=4)
    assert [a.usage.generated_tokens for a in answers] == [3, 12, 12, 3]
    assert [len(a.videos[0].indices) for a in answers] == [4, 2, 3, 4]
    assert answers[2].videos[0].sampler == "interval"  # fps picks the sampler that takes it
    single = llava.ask(videos["vp9"], QUESTION)
    assert answers[1].videos[0].indices != single.videos[0].indices
    alone = llava.batch([requests[3]])[0]
    assert alone.token_ids == answers[3].token_ids


def test_batch_errors_can_be_returned_in_place(llava, videos, tmp_path) -> None:
    requests = [
        {"videos": [videos["h264"]], "question": QUESTION},
        {"videos": [videos["h264"]], "question": "Is this <image> a cat?"},
        {"videos": [str(tmp_path / "missing.mp4")], "question": QUESTION},
        {"videos": [videos["h264"]], "qestion": QUESTION},
        {"videos": [videos["vp9"]], "question": QUESTION},
    ]
    results = llava.batch(requests, errors="return")
    assert results[0].text and results[4].text
    assert "'<image>', the model's own media token" in str(results[1])
    assert "video not found" in str(results[2])
    assert "did you mean 'question'" in str(results[3])
    with pytest.raises(OptionsError, match="media token"):
        llava.batch(requests[:2])


def test_a_request_the_processor_refuses_fails_alone(llava, videos, monkeypatch) -> None:
    build = llava.formatter.build_inputs

    def picky(conversations, processor, **options):
        if any("refuse" in str(m.content) for c in conversations for m in c):
            raise ValueError("Mismatch in `image` token count\nsecond line")
        return build(conversations, processor, **options)

    monkeypatch.setattr(llava.formatter, "build_inputs", picky)
    requests = [
        {"videos": [videos["h264"]], "question": "please refuse"},
        {"videos": [videos["vp9"]], "question": QUESTION},
    ]
    results = llava.batch(requests, errors="return")
    assert isinstance(results[0], FormatterError)
    assert str(results[0]) == "the processor refused the prompt: Mismatch in `image` token count"
    assert results[1].usage.generated_tokens == 12


def test_each_video_is_decoded_once_for_its_questions(llava_dir, videos) -> None:
    pipe = vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        sampler_options={"num_frames": 3},
        generation={"max_new_tokens": 2},
        cache=FrameCache(),
    )
    for question in ("What?", "Who?", "Where?"):
        pipe.ask(videos["h264"], question)
    pipe.batch([{"videos": [videos["h264"]], "question": "When?", "num_frames": 2}])
    assert (pipe.cache.misses, pipe.cache.hits) == (2, 2)  # a new frame count is a new sample
    off = vidtt.Pipeline(
        model=str(llava_dir),
        backend="cpu",
        engine=pipe.engine,
        cache=FrameCache(0),
        sampler_options={"num_frames": 3},
        generation={"max_new_tokens": 2},
    )
    assert off.ask(videos["h264"], "What?").token_ids == pipe.ask(videos["h264"], "What?").token_ids
    assert len(off.cache) == 0


def test_a_stopped_request_ends_alone_in_its_batch(llava, videos) -> None:
    def prepared(options: dict) -> list:
        return [
            llava.prepare({"videos": [videos[n]], "question": QUESTION, **options})
            for n in ("h264", "vp9")
        ]

    short = prepared({"min_new_tokens": 6, "max_new_tokens": 6})
    stops = [threading.Event(), threading.Event()]
    stops[0].set()  # this client went away before its answer began
    answers = llava.answer_each(short, stops=stops)
    assert [a.usage.generated_tokens for a in answers] == [1, 6]
    stops[0].clear()
    stops[1].set()
    answers = llava.answer_each(short, stops=stops)
    assert [a.usage.generated_tokens for a in answers] == [6, 1]
    stops[0].set()  # every client went away: the generation ends at once
    answers = llava.answer_each(prepared(LONG), stops=stops)
    assert [a.usage.generated_tokens for a in answers] == [1, 1]


def test_processor_outputs_the_model_does_not_take_are_left_out(llava, videos, monkeypatch) -> None:
    """A tokenizer that lists `token_type_ids` (as generic fast tokenizers did up to
    transformers 4.57) adds them to the processor's output; generate refuses them for a model
    whose forward does not take them, so the engine leaves them out."""
    tokenizer = llava.processor.tokenizer
    names = [*tokenizer.model_input_names, "token_type_ids"]
    monkeypatch.setattr(tokenizer, "model_input_names", names)
    seen: list[set[str]] = []
    build = llava.formatter.build_inputs

    def spy(*args, **kwargs):
        inputs = build(*args, **kwargs)
        seen.append(set(inputs))
        return inputs

    monkeypatch.setattr(llava.formatter, "build_inputs", spy)
    answer = llava.ask(videos["h264"], QUESTION, max_new_tokens=3)
    assert "token_type_ids" in seen[0] and answer.usage.generated_tokens == 3


def test_generate_gets_only_what_the_model_names() -> None:
    from vidtt.engine.inputs import generate_inputs

    class Strict:  # prepare_inputs_for_generation without **kwargs: only its own names
        config = SimpleNamespace(is_encoder_decoder=False)

        def prepare_inputs_for_generation(self, input_ids, attention_mask=None):
            return {}

        def forward(self, input_ids, pixel_values=None, token_type_ids=None):
            return None

    class Open(Strict):  # with **kwargs: forward's names count too
        def prepare_inputs_for_generation(self, input_ids, **kwargs):
            return {}

    inputs = {"input_ids": 1, "attention_mask": 2, "pixel_values": 3, "token_type_ids": 4}
    assert generate_inputs(Strict(), inputs) == {"input_ids": 1, "attention_mask": 2}
    assert generate_inputs(Open(), inputs) == {
        "input_ids": 1,
        "pixel_values": 3,
        "token_type_ids": 4,
    }
    unreadable = SimpleNamespace(config=SimpleNamespace(is_encoder_decoder=False))
    assert generate_inputs(unreadable, inputs) == inputs  # generate judges
