"""The judge of open answers: its verdict reading, a judge server, a local LM, the scores."""

# no `from __future__ import annotations` here: FastAPI reads the handlers' annotations
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vidtt.errors import ModelLoadError
from vidtt.eval.judge import (
    Judge,
    JudgeError,
    JudgeItem,
    LocalJudge,
    ServerJudge,
    api_base,
    judge_from,
    judge_lines,
    judge_scores,
    prompt_for,
    read_verdict,
)
from vidtt.eval.questions import Question
from vidtt.eval.remote import retry_after

KEY = "sekrit"


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("yes", True),
        ("Yes.", True),
        ("**No**", False),
        ("  NO!", False),
        ("yes, because the prediction names the same animal", True),
        ("No, it is not correct.", False),
        ("No, although the answer is correct in part", False),
        ("Correct", True),
        ("Incorrect.", False),
        ("True", True),
        ("false", False),
        ("Not correct.", False),
        ("It isn't correct.", False),
        ("Answer: yes", True),
        ("**Verdict:** No", False),
        ("Correct answer: no", False),
        ("Yes: both say a cat.", True),
        ("The prediction is correct.", True),
        ("The prediction is wrong.", False),
        ("The answer is yes.", True),
        ("<think>maybe no... wait</think>Yes", True),
        ("Yes/No", None),
        ("yes or no", None),
        ("I think yes but also no", None),
        ("maybe", None),
        ("", None),
        ("...", None),
        (None, None),
        ("yesterday", None),
        ("The snow is white.", None),
        ("There is no doubt: it is correct.", None),
    ],
)
def test_read_verdict_reads_odd_replies_by_the_pinned_rules(reply: Any, verdict: Any) -> None:
    assert read_verdict(reply) is verdict


def test_the_prompt_carries_question_references_and_prediction() -> None:
    text = prompt_for(JudgeItem("What animal is it?", ("a cat", "kitten"), "  a feline "))
    assert "Question: What animal is it?" in text
    assert "- a cat\n- kitten" in text
    assert "Predicted answer: a feline\n" in text
    assert text.endswith("Reply with one word: yes or no.")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://h:8000", "http://h:8000/v1"),
        ("http://h:8000/", "http://h:8000/v1"),
        ("http://h:8000/v1/", "http://h:8000/v1"),
        ("https://h/openai/v1/chat/completions", "https://h/openai/v1"),
        ("http://h:8000#judge", "http://h:8000/v1"),
    ],
)
def test_api_base(url: str, base: str) -> None:
    assert api_base(url) == base


def test_retry_after_takes_the_header_bounded_else_doubles() -> None:
    assert retry_after("2", 0, 30.0) == 2.0
    assert retry_after("999", 0, 30.0) == 30.0
    assert retry_after(None, 2, 30.0) == 4.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 0, 30.0) == 0.0  # a date past
    assert retry_after("soon", 1, 30.0) == 2.0


# --- a small OpenAI-compatible judge server -------------------------------------------------


def _field(prompt: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", prompt, re.MULTILINE)
    return found.group(1) if found else ""


def make_app(state: dict[str, Any]) -> Any:
    """Replies "Yes." when the prediction is one of the references, "**No**" else; the
    prediction RATE is answered 429 (Retry-After: 1) once, BOOM 500, MUMBLE "maybe"."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI()

    def refused(request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"error": {"message": "bad key"}}, status_code=401)
        return None

    @app.get("/v1/models")
    def models(request: Request) -> Any:
        return refused(request) or {"data": [{"id": m} for m in state["models"]]}

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        if (answer := refused(request)) is not None:
            return answer
        body = await request.json()
        prompt = body["messages"][-1]["content"]
        state["bodies"].append(body)
        prediction = _field(prompt, "Predicted answer")
        refs = re.findall(r"^- (.*)$", prompt, re.MULTILINE)
        if prediction == "RATE":
            state["rate_times"].append(time.monotonic())
            if len(state["rate_times"]) == 1:
                return JSONResponse({}, status_code=429, headers={"Retry-After": "1"})
        if prediction == "BOOM":
            return JSONResponse({"error": "boom"}, status_code=500)
        reply = "maybe" if prediction == "MUMBLE" else "Yes." if prediction in refs else "**No**"
        message = {"role": "assistant", "content": reply}
        return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}

    return app


def _fresh_state() -> dict[str, Any]:
    return {"models": ["judge-a"], "bodies": [], "rate_times": []}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, dict[str, Any]]]:
    uvicorn = pytest.importorskip("uvicorn")
    state = _fresh_state()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(make_app(state), log_level="error", lifespan="off")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert running.started
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", state
    running.should_exit = True
    thread.join(5)
    sock.close()


@pytest.fixture
def served(server: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    url, state = server
    state.clear()
    state.update(_fresh_state())
    return url, state


def item(prediction: str, refs: tuple[str, ...] = ("a cat",)) -> JudgeItem:
    return JudgeItem("What animal is on the mat?", refs, prediction)


def test_server_judge_sends_the_prompt_and_keeps_the_order(served) -> None:
    url, state = served
    judge = ServerJudge(url, api_key=KEY, concurrency=4)
    assert judge.name == "judge-a"  # the one model GET /v1/models lists
    predictions = ["a cat", "a dog", "kitten", "a cat", "MUMBLE", "a dog", "kitten", "x"]
    found = judge.verdicts([item(p, ("a cat", "kitten")) for p in predictions])
    assert found == [True, False, True, True, None, False, True, False]
    body = state["bodies"][0]
    assert body["model"] == "judge-a" and body["temperature"] == 0 and body["max_tokens"] <= 16
    prompts = [b["messages"][-1]["content"] for b in state["bodies"]]
    assert sorted(_field(p, "Predicted answer") for p in prompts) == sorted(predictions)
    assert all("Question: What animal is on the mat?" in p for p in prompts)
    assert all("- a cat\n- kitten\n" in p for p in prompts)


def test_server_judge_waits_out_a_429_and_a_500_is_no_verdict(served) -> None:
    url, state = served
    judge = ServerJudge(f"{url}/v1/chat/completions#judge-a", api_key=KEY, concurrency=1)
    assert judge.verdicts([item("RATE"), item("BOOM"), item("a cat")]) == [False, None, True]
    first, second = state["rate_times"]
    assert second - first >= 0.9  # Retry-After: 1 was honoured
    assert judge.failures == ["HTTP 500"]


def test_server_judge_errors_up_front_in_one_line(served) -> None:
    url, state = served
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cases = [
        (lambda: ServerJudge(f"http://127.0.0.1:{port}", api_key=KEY), "cannot be reached"),
        (lambda: ServerJudge(url, api_key="wrong"), "refused the API key (HTTP 401)"),
        (lambda: ServerJudge(url), "needs an API key"),
        (lambda: ServerJudge(url, model="judge-z", api_key=KEY), "does not serve 'judge-z'"),
    ]
    for make, words in cases:
        with pytest.raises(JudgeError) as caught:
            make()
        assert words in str(caught.value) and "\n" not in str(caught.value)
    state["models"] = ["judge-a", "judge-b"]
    with pytest.raises(JudgeError, match=r"serves 2 models \(judge-a, judge-b\): add #MODEL"):
        ServerJudge(url, api_key=KEY)
    assert ServerJudge(url, model="judge-b", api_key=KEY).name == "judge-b"
    assert state["bodies"] == []  # nothing was judged


def test_judge_from_reads_a_url_with_its_model(served) -> None:
    url, _ = served
    judge = judge_from(f"{url}#judge-a", api_key=KEY)
    assert isinstance(judge, ServerJudge) and judge.model == "judge-a"
    assert isinstance(judge, Judge)


# --- a tiny local causal LM -------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from vidtt.testing.models import CHATML, save_model, tiny_text_config, train_tokenizer

    folder = tmp_path_factory.mktemp("judge-lm")
    tok = train_tokenizer()
    tok.add_tokens(["yes"])
    tok.chat_template = CHATML
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(**tiny_text_config(len(tok), 512)))
    save_model(model, tok, folder)
    tok.save_pretrained(folder)
    return folder


def test_local_judge_batches_with_left_padding_one_verdict_per_item(tiny_lm: Path) -> None:
    judge = LocalJudge(str(tiny_lm), dtype="float32", batch_size=2)
    assert judge.tokenizer.padding_side == "left"
    calls: list[int] = []
    generate = judge.model.generate

    def counted(**kwargs: Any) -> Any:
        calls.append(kwargs["input_ids"].shape[0])
        return generate(**kwargs)

    judge.model.generate = counted
    items = [item(p) for p in ("a cat", "a rather long answer about a dog on a mat", "x", "", "y")]
    batched = judge.replies(items)
    assert calls == [2, 2, 1]
    alone = [judge.replies([one])[0] for one in items]
    assert batched == alone  # left padding: a reply does not depend on its batch
    found = judge.verdicts(items)
    assert len(found) == len(items) and all(v in (True, False, None) for v in found)
    assert judge.text_of(items[0]).startswith("<|im_start|>user\nYou are checking")


def test_local_judge_reads_the_models_reply_as_the_verdict(tiny_lm: Path) -> None:
    judge = LocalJudge(str(tiny_lm), dtype="float32", batch_size=4)
    yes = judge.tokenizer.convert_tokens_to_ids("yes")
    end = judge.tokenizer.convert_tokens_to_ids("<|im_end|>")
    judge.model.generation_config.sequence_bias = [[[yes], 1e4], [[yes, end], 2e4]]
    items = [item(p) for p in ("a cat", "a dog", "z")]
    assert judge.replies(items) == ["yes"] * 3
    assert judge.verdicts(items) == [True, True, True]
    judge.tokenizer.chat_template = None  # plain text, cued by "Answer:"
    assert judge.text_of(items[0]).endswith("yes or no.\nAnswer:")
    assert judge.verdicts(items) == [True, True, True]


def test_a_missing_local_judge_model_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    from vidtt.settings.hub import forget

    missing = str(tmp_path / "no-judge")
    with pytest.raises(ModelLoadError, match=re.escape(missing)) as caught:
        judge_from(missing)
    assert "\n" not in str(caught.value)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    forget()
    with pytest.raises(ModelLoadError, match="nobody/no-such-judge") as caught:
        LocalJudge("nobody/no-such-judge")
    assert "\n" not in str(caught.value)
    forget()


# --- judged lines and their scores -----------------------------------------------------------


class Scripted:
    """A judge that answers from a table and records each call."""

    name = "scripted"

    def __init__(self, table: dict[str, bool | None]) -> None:
        self.table = table
        self.calls: list[list[JudgeItem]] = []

    def verdicts(self, items: Any) -> list[bool | None]:
        self.calls.append(list(items))
        return [self.table[i.prediction] for i in items]


def question(qid: str, kind: str = "open", answer: Any = ("a cat",)) -> Question:
    extra: dict[str, Any] = {"answer": list(answer)}
    if kind == "choice":
        extra = {"options": ["cat", "dog"], "answer": "A"}
    return Question(id=qid, video=Path("v.mp4"), question=f"q {qid}?", kind=kind, **extra)


def test_judge_lines_marks_open_lines_in_one_call() -> None:
    questions = {q.id: q for q in [question("1"), question("2"), question("3"), question("4")]}
    questions["c"] = question("c", kind="choice")
    lines: list[dict[str, Any]] = [
        {"id": "1", "kind": "open", "prediction": "a feline"},
        {"id": "2", "kind": "open", "prediction": "a dog"},
        {"id": "3", "kind": "open", "prediction": None, "error": "boom"},
        {"id": "4", "kind": "open", "prediction": "hmm"},
        {"id": "c", "kind": "choice", "prediction": "A"},
    ]
    judge = Scripted({"a feline": True, "a dog": False, "hmm": None})
    judge_lines(lines, questions, judge)
    assert [line.get("judged", "unset") for line in lines] == [True, False, None, None, "unset"]
    assert len(judge.calls) == 1
    assert judge.calls[0][0] == JudgeItem("q 1?", ("a cat",), "a feline")
    scores = judge_scores(lines, judge.name)
    assert scores["judge"] == "scripted"
    assert scores["accuracy"]["value"] == pytest.approx(0.25)
    assert scores["accuracy"]["count"] == 4
    low, high = scores["accuracy"]["ci"]
    assert 0.0 <= low <= 0.25 <= high <= 1.0
    assert scores["no_verdict"] == 1  # "hmm"; line 3 had no answer to judge


def test_judge_lines_without_open_answers_does_not_call_the_judge() -> None:
    judge = Scripted({})
    lines = [{"id": "1", "kind": "open", "prediction": "  "}]
    judge_lines(lines, {"1": question("1")}, judge)
    assert judge.calls == [] and lines[0]["judged"] is None
    empty = judge_scores([], "scripted")
    assert empty["accuracy"] == {"value": 0.0, "ci": None, "count": 0}
