"""A judge model that decides whether an open answer means the same as a reference.

Exact and contains match (`vidtt.eval.open_answers`) miss right answers worded otherwise; a
judge model reads each question, its reference answers and the prediction, and replies yes
or no, as lmms-eval's GPT judge does. `judge_from(spec)` gives one:

- `http://HOST:PORT[/PATH][#MODEL]` (or https): a `ServerJudge`, any OpenAI-compatible chat
  completions server (vLLM, `vidtt serve`, llama.cpp, OpenAI). A bare host means `/v1`;
  a path ending in `/chat/completions` is cut back to its base. Without `#MODEL` the model is
  the one the server lists at `GET /models` (one only; name it when it lists several).
- anything else: a `LocalJudge`, a transformers causal LM by hub id or local folder.

The prompt (`PROMPT`, the one text both judges send, as a single user message)::

    You are checking an answer to a question about a video.
    Question: {question}
    Reference answer(s):
    - {reference}            (one line per reference)
    Predicted answer: {prediction}
    Does the predicted answer answer the question with the same meaning as one of the
    reference answers? Reply with one word: yes or no.

A local model without a chat template gets the same text followed by a line `Answer:`.

`read_verdict` reads the reply (True: same meaning), by these rules, in order:

1. A `<think>...</think>` block is dropped; `n't` reads as `not`; case and markdown do not
   matter. Verdict words: yes, correct, true (yes); no, incorrect, false, wrong (no);
   `not` before a yes word makes it a no ("not correct").
2. A lead-in ending in a colon, of at most three words, is skipped ("Answer:", "Final
   verdict:", "Correct answer:") unless its words are all verdict words or `not` ("Yes:").
3. A reply that starts with a verdict word is decided by it ("Yes.", "**No**", "yes,
   because ...", "Correct"), unless its first clause (up to , . ; : ! ? or a line break)
   holds the opposite verdict as well ("Yes/No", "yes or no") -- then None.
4. Otherwise the verdict words anywhere in the reply decide when all of them agree ("The
   answer is correct."); both kinds, or none, give None.

`judge_lines` sets `judged` on the open lines of `predictions.jsonl` (one call, the judge
batches); `judge_scores` gives the judged accuracy with its bootstrap interval, a line with no
verdict counting as wrong.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from vidtt.errors import ModelLoadError, OptionsError, VidttError
from vidtt.eval.questions import Question
from vidtt.eval.remote import retry_after

PROMPT = (
    "You are checking an answer to a question about a video.\n"
    "Question: {question}\n"
    "Reference answer(s):\n{references}\n"
    "Predicted answer: {prediction}\n"
    "Does the predicted answer answer the question with the same meaning as one of the "
    "reference answers? Reply with one word: yes or no."
)
PLAIN_CUE = "\nAnswer:"  # after the prompt, for a local model without a chat template
YES_WORDS = frozenset({"yes", "correct", "true"})
NO_WORDS = frozenset({"no", "incorrect", "false", "wrong"})
NEGATIONS = frozenset({"not", "never"})
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_LEAD_IN = re.compile(r"^[\W_]*((?:[a-z]+\s*){1,3}):")
_CLAUSE_END = re.compile(r"[,.;:!?\n]")
RETRIED = (429, 503)


class JudgeError(VidttError):
    """The judge cannot be used: its server cannot be reached, refuses the key or has no model."""


@dataclass(frozen=True)
class JudgeItem:
    """One open answer to judge: the question, its reference answers and the prediction."""

    question: str
    references: tuple[str, ...]
    prediction: str


@runtime_checkable
class Judge(Protocol):
    """Decides for each item whether the prediction means a reference (None: no verdict)."""

    name: str

    def verdicts(self, items: Sequence[JudgeItem]) -> list[bool | None]: ...


def prompt_for(item: JudgeItem) -> str:
    """The judge prompt for `item` (`PROMPT` filled in)."""
    refs = "\n".join(f"- {ref.strip()}" for ref in item.references)
    return PROMPT.format(
        question=item.question.strip(), references=refs, prediction=item.prediction.strip()
    )


def _hits(words: list[str]) -> set[bool]:
    """The verdicts `words` hold: True for a yes word, False for a no word or `not` + yes."""
    found: set[bool] = set()
    for i, word in enumerate(words):
        if word in NO_WORDS:
            found.add(False)
        elif word in YES_WORDS:
            found.add(not (i > 0 and words[i - 1] in NEGATIONS))
    return found


def read_verdict(text: str | None) -> bool | None:
    """The judge's verdict in its reply: True yes, False no, None unreadable (module rules)."""
    reply = _THINK.sub(" ", (text or "").lower()).replace("n't", " not").strip()
    lead = _LEAD_IN.match(reply)
    if lead and not set(lead.group(1).split()) <= YES_WORDS | NO_WORDS | NEGATIONS:
        reply = reply[lead.end() :]
    words = re.findall(r"[a-z]+", reply)
    if not words:
        return None
    starts = words[0] in YES_WORDS | NO_WORDS or (
        words[0] in NEGATIONS and len(words) > 1 and words[1] in YES_WORDS
    )
    if starts:
        first = re.sub(r"^[\W_]+", "", reply)
        clause = _hits(re.findall(r"[a-z]+", _CLAUSE_END.split(first, maxsplit=1)[0]))
        return clause.pop() if len(clause) == 1 else None
    found = _hits(words)
    return found.pop() if len(found) == 1 else None


def api_base(url: str) -> str:
    """The server's API base: `/chat/completions` cut off, a bare host given `/v1`."""
    import httpx

    base = url.split("#", 1)[0].rstrip("/")
    base = re.sub(r"/chat/completions$", "", base)
    return base + "/v1" if httpx.URL(base).path in ("", "/") else base


class _Failed(Exception):
    """A judge call that gave no reply (its reason the message)."""


class ServerJudge:
    """A judge over an OpenAI-compatible chat completions server (temperature 0).

    The server is asked for its models at once: an unreachable server, a refused key or no
    model to use is one `JudgeError` here, before any question is judged. Later, a 429 or 503
    is retried after its Retry-After (at most `retries` times, `max_wait` seconds each); any
    other failed call is a None verdict, its reason kept in `failures`.
    """

    def __init__(
        self,
        url: str,
        model: str | None = None,
        api_key: str | None = None,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_tokens: int = 8,
        retries: int = 4,
        max_wait: float = 30.0,
    ) -> None:
        import httpx

        if concurrency < 1:
            raise OptionsError(f"judge concurrency={concurrency}: use 1 or more")
        self.base, self.api_key = api_base(url), api_key
        self.concurrency, self.max_tokens = concurrency, max_tokens
        self.retries, self.max_wait = retries, max_wait
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout, headers=headers)
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self.model = self._choose_model(model)
        self.name = self.model

    def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request, 429/503 retried after their Retry-After; the last response."""
        for attempt in range(self.retries + 1):
            response = self.client.request(method, self.base + path, **kwargs)
            if response.status_code not in RETRIED or attempt == self.retries:
                return response
            wait = retry_after(response.headers.get("retry-after"), attempt, self.max_wait)
            time.sleep(wait)
        raise AssertionError("unreachable")

    def _models(self) -> list[str] | None:
        """The ids at GET /models (None: the server has no such route); errors up front."""
        import httpx

        where = f"judge server {self.base}"
        try:
            response = self._send("GET", "/models")
        except httpx.HTTPError as exc:
            raise JudgeError(
                f"{where} cannot be reached ({type(exc).__name__}): start it, or check the URL"
            ) from None
        if response.status_code in (401, 403):
            what = "refused the API key" if self.api_key else "needs an API key"
            raise JudgeError(f"{where} {what} (HTTP {response.status_code}): give a valid key")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise JudgeError(f"{where} answered HTTP {response.status_code} to GET /models")
        try:
            return [str(entry["id"]) for entry in response.json()["data"]]
        except (ValueError, KeyError, TypeError):
            raise JudgeError(f"{where}: GET /models is not an OpenAI model list") from None

    def _choose_model(self, model: str | None) -> str:
        """`model` when the server serves it (or lists nothing), else its one listed model."""
        listed = self._models() or []
        where = f"judge server {self.base}"
        shown = ", ".join(listed[:5]) + (" ..." if len(listed) > 5 else "")
        if model:
            if listed and model not in listed:
                raise JudgeError(f"{where} does not serve {model!r} (it lists {shown})")
            return model
        if not listed:
            raise JudgeError(f"{where} lists no model: name one as {self.base}#MODEL")
        if len(listed) > 1:
            raise JudgeError(f"{where} serves {len(listed)} models ({shown}): add #MODEL")
        return listed[0]

    def reply(self, item: JudgeItem) -> str | None:
        """The server's reply to `item`'s prompt (None when the call failed)."""
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt_for(item)}],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        try:
            response = self._send("POST", "/chat/completions", json=body)
            if response.status_code != 200:
                raise _Failed(f"HTTP {response.status_code}")
            content = response.json()["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise _Failed("no text in the reply")
            return content
        except Exception as exc:  # a failed call is a missing verdict, not a crash
            reason = str(exc) if isinstance(exc, _Failed) else f"{type(exc).__name__}: {exc}"
            with self._lock:
                self.failures.append(reason)
            return None

    def verdicts(self, items: Sequence[JudgeItem]) -> list[bool | None]:
        """One verdict per item, in order; `concurrency` calls at a time."""
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return [read_verdict(text) for text in pool.map(self.reply, items)]

    def close(self) -> None:
        self.client.close()


class LocalJudge:
    """A judge over a transformers causal LM: greedy, batched with left padding.

    The prompt goes through the tokenizer's chat template when it has one, else as plain
    text followed by `Answer:`. A model that cannot be loaded is one `ModelLoadError`.
    """

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        max_new_tokens: int = 8,
    ) -> None:
        if batch_size < 1:
            raise OptionsError(f"judge batch_size={batch_size}: use 1 or more")
        self.name, self.device = model, device
        self.batch_size, self.max_new_tokens = batch_size, max_new_tokens
        self.tokenizer, self.model = _load_causal_lm(model, device, dtype)

    def text_of(self, item: JudgeItem) -> str:
        """The model's input text for `item`: chat-templated, or plain with `Answer:`."""
        prompt = prompt_for(item)
        if not getattr(self.tokenizer, "chat_template", None):
            return prompt + PLAIN_CUE
        messages = [{"role": "user", "content": prompt}]
        return str(
            self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True, enable_thinking=False
            )
        )

    def replies(self, items: Sequence[JudgeItem]) -> list[str]:
        """The model's greedy reply to each item's prompt, `batch_size` at a time."""
        import torch

        templated = bool(getattr(self.tokenizer, "chat_template", None))
        texts = [self.text_of(item) for item in items]
        out: list[str] = []
        for start in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                return_tensors="pt",
                padding=True,
                add_special_tokens=not templated,
            ).to(self.device)
            with torch.inference_mode():
                made = self.model.generate(
                    **batch,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    pad_token_id=self.tokenizer.pad_token_id,
                )
            new = made[:, batch["input_ids"].shape[1] :]
            out.extend(self.tokenizer.batch_decode(new, skip_special_tokens=True))
        return out

    def verdicts(self, items: Sequence[JudgeItem]) -> list[bool | None]:
        """One verdict per item, in order."""
        return [read_verdict(text) for text in self.replies(items)]


def _load_causal_lm(model: str, device: str, dtype: str) -> tuple[Any, Any]:
    """The tokenizer (left padding, a pad token) and the model, in eval mode on `device`."""
    from vidtt.engine.loading import check_local_model, explain
    from vidtt.settings.hub import hub_keywords

    try:
        check_local_model(model)
        options = hub_keywords(model, None, False)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
            raise OptionsError(f"judge dtype {dtype!r}: use auto, float32, bfloat16 or float16")
        tokenizer = AutoTokenizer.from_pretrained(model, **options)
        chosen = dtype if dtype == "auto" else getattr(torch, dtype)
        lm: Any = AutoModelForCausalLM.from_pretrained(model, dtype=chosen, **options)
    except OptionsError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"judge model: {explain(model, exc)}") from None
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, lm.to(device).eval()


def judge_from(spec: str, *, api_key: str | None = None, device: str = "cpu") -> Judge:
    """The judge `spec` names: `http(s)://URL[#MODEL]` a `ServerJudge`, else a `LocalJudge`
    (hub id or local folder) on `device`."""
    if re.match(r"^https?://", spec, re.IGNORECASE):
        url, _, model = spec.partition("#")
        return ServerJudge(url, model=model.strip() or None, api_key=api_key)
    if not spec.strip():
        raise OptionsError("the judge is empty: give a model (hub id or folder) or a server URL")
    return LocalJudge(spec, device=device)


def judge_lines(
    lines: list[dict[str, Any]], questions: Mapping[str, Question], judge: Judge
) -> None:
    """Set `judged` on every open line: the judge's verdict, None with no prediction (or no
    reference) or no verdict. The judge is called once, with every item."""
    asked: list[tuple[dict[str, Any], JudgeItem]] = []
    for line in lines:
        if line.get("kind") != "open":
            continue
        line["judged"] = None
        if line["id"] not in questions:
            raise OptionsError(f"prediction {line['id']!r} has no question: score the same set")
        question, prediction = questions[line["id"]], line.get("prediction") or ""
        refs = tuple(ref for ref in question.references if ref.strip())
        if prediction.strip() and refs:
            asked.append((line, JudgeItem(question.question, refs, prediction)))
    if not asked:
        return
    found = judge.verdicts([item for _, item in asked])
    if len(found) != len(asked):
        raise VidttError(f"judge {judge.name} gave {len(found)} verdicts for {len(asked)} answers")
    for (line, _), verdict in zip(asked, found, strict=True):
        line["judged"] = verdict


def judge_scores(lines: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
    """The judged accuracy of the open lines (no verdict counts as wrong), with its 95%
    bootstrap interval; `no_verdict` counts answered lines the judge gave no verdict for."""
    from vidtt.eval.intervals import bootstrap_ci

    mine = [line for line in lines if line.get("kind") == "open"]
    values = [1.0 if line.get("judged") is True else 0.0 for line in mine]
    accuracy: dict[str, Any] = {"value": 0.0, "ci": None, "count": 0}
    if values:
        low, high = bootstrap_ci(values)
        accuracy = {"value": sum(values) / len(values), "ci": [low, high], "count": len(values)}
    answered = [line for line in mine if (line.get("prediction") or "").strip()]
    silent = sum(1 for line in answered if line.get("judged") is None)
    return {"judge": name, "accuracy": accuracy, "no_verdict": silent}
