"""Generation options: min_new_tokens, stop strings, any GenerationConfig field by name."""

from __future__ import annotations

import pytest

from vidtt import GenerationOptions, OptionsError
from vidtt.engine.generate import cut_at_stop, held_back

QUESTION = "What is happening in this video?"


def test_stop_accepts_a_string_or_a_list() -> None:
    assert GenerationOptions(stop="END").stop == ["END"]
    assert GenerationOptions(stop=["a", "b"]).generate_kwargs()["stop_strings"] == ["a", "b"]
    assert "stop" not in GenerationOptions(stop="x").generate_kwargs()
    with pytest.raises(ValueError, match="stop strings must not be empty"):
        GenerationOptions(stop=[""])


def test_any_generation_config_field_is_accepted_by_name() -> None:
    options = GenerationOptions(min_p=0.1, no_repeat_ngram_size=3, min_new_tokens=2)
    kwargs = options.generate_kwargs()
    assert kwargs["min_p"] == 0.1 and kwargs["no_repeat_ngram_size"] == 3
    assert kwargs["min_new_tokens"] == 2
    with pytest.raises(ValueError, match="unknown generation option.s. 'beams', 'topp'"):
        GenerationOptions(beams=2, topp=0.3)
    with pytest.raises(ValueError, match="'stop_strings' is not accepted: use stop"):
        GenerationOptions(stop_strings=["x"])
    with pytest.raises(ValueError, match="num_return_sequences"):
        GenerationOptions(num_return_sequences=2)
    with pytest.raises(ValueError, match="min_new_tokens=9 is above max_new_tokens=4"):
        GenerationOptions(min_new_tokens=9, max_new_tokens=4)


def test_cut_at_stop_and_held_back() -> None:
    assert cut_at_stop("one two END three", ["END", "two"]) == ("one ", True)
    assert cut_at_stop("plain", ["END"]) == ("plain", False)
    assert held_back("text EN", ["END"]) == 2 and held_back("text", ["END"]) == 0


def test_min_new_tokens_holds_off_eos(llava, videos) -> None:
    first = llava.ask(videos["h264"], QUESTION, max_new_tokens=4).token_ids
    eos = llava.model.generation_config.eos_token_id
    llava.model.generation_config.eos_token_id = first[0]
    try:
        assert llava.ask(videos["h264"], QUESTION, max_new_tokens=4).token_ids == first[:1]
        held = llava.ask(videos["h264"], QUESTION, max_new_tokens=4, min_new_tokens=3)
        assert len(held.token_ids) >= 3 and first[0] not in held.token_ids[:3]
    finally:
        llava.model.generation_config.eos_token_id = eos


def test_stop_string_ends_the_answer_and_is_excluded(llava, videos) -> None:
    whole = llava.ask(videos["h264"], QUESTION, max_new_tokens=12)
    text = whole.text
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    assert stop.strip() and len(stop) == 3
    expected = text[: text.find(stop)]
    answer = llava.ask(videos["h264"], QUESTION, max_new_tokens=12, stop=stop)
    assert answer.text == expected and answer.finish_reason == "stop"
    assert len(answer.token_ids) < len(whole.token_ids)
    stream = llava.ask(videos["h264"], QUESTION, max_new_tokens=12, stop=[stop], stream=True)
    assert "".join(stream) == expected and stream.answer.text == expected


def test_unknown_option_through_the_pipeline(llava, videos) -> None:
    with pytest.raises(OptionsError, match="unknown generation option.s. 'temprature'"):
        llava.ask(videos["h264"], QUESTION, temprature=0.5)
