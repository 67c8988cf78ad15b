"""`vidtt eval`'s run: questions as `vidtt run` requests, answered and scored (docs/eval.md).

The output folder holds `requests.jsonl` (one `vidtt run` request per question: its id, video,
prompt and the clip bounds as `start`/`end`), `answers.jsonl` (`vidtt run`'s records, so a
rerun answers only what is left), `predictions.jsonl` (per question what was read from the
answer and whether it is right) and `scores.json`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vidtt.eval.choices import extract_choice, group_outcomes
from vidtt.eval.grounding import grounding_scores, iou
from vidtt.eval.intervals import bootstrap_ci
from vidtt.eval.open_answers import contains_match, exact_match
from vidtt.eval.prompts import STYLES, prompt_for
from vidtt.eval.questions import Question, QuestionsError, read_questions
from vidtt.pipeline.spans import read_spans

if TYPE_CHECKING:
    from vidtt.eval.judge import Judge

REQUESTS, ANSWERS = "requests.jsonl", "answers.jsonl"
PREDICTIONS, SCORES = "predictions.jsonl", "scores.json"


@dataclass(frozen=True)
class EvalSet:
    """The questions of a set, its name and the rule (and prompt style) they are asked by."""

    name: str
    questions: list[Question]
    rule: str = "strict"


def load_set(source: str, root: str | Path | None = None, limit: int | None = None) -> EvalSet:
    """A benchmark by name (with `root`, its folder) or one's own JSONL file; the first
    `limit` questions. Every reading problem is one `QuestionsError`, before any model."""
    from vidtt.eval.benchmarks import read_benchmark

    if root is not None:
        questions = read_benchmark(source, root)
        name = re.sub(r"[-_\s]", "", source.lower())
        rule = {k.replace("_", ""): v for k, v in STYLES.items()}.get(name, "strict")
    elif not Path(source).exists() and _benchmark(source):
        raise QuestionsError(f"{source} is a benchmark: give --root FOLDER, where it was stored")
    else:
        questions, rule, name = read_questions(source), "strict", Path(source).stem
    return EvalSet(name, questions[:limit] if limit else questions, rule)


def _benchmark(name: str) -> bool:
    """Whether `name` is a benchmark's name (without case, `-` or `_`)."""
    return re.sub(r"[-_\s]", "", name.lower()) in {k.replace("_", "") for k in STYLES}


def request_of(question: Question, style: str) -> dict[str, Any]:
    """The `vidtt run` request asking `question`: id, video, prompt, clip bounds."""
    request: dict[str, Any] = {
        "id": question.id,
        "videos": [str(question.video)],
        "question": prompt_for(question, style),
    }
    if question.kind == "grounding":  # the pipeline reads (and narrows) the answer's spans
        request["spans"] = True
    if question.start is not None:
        request["start"] = question.start
    if question.end is not None:
        request["end"] = question.end
    return request


def write_requests(
    eval_set: EvalSet, folder: Path, fields: Mapping[str, Any] | None = None
) -> Path:
    """`folder/requests.jsonl`, one request per question with `fields` (a sweep's setting)
    added to each (rewritten each run)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / REQUESTS
    extra = dict(fields or {})
    lines = (
        json.dumps({**request_of(q, eval_set.rule), **extra}) + "\n" for q in eval_set.questions
    )
    path.write_text("".join(lines), encoding="utf-8")
    return path


def _measures(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a question cost: visual tokens, seconds (the stages' sum; for a server that does
    not tell, the client's wait), peak memory, and the times of the frames seen per video."""
    usage, timings = record.get("usage") or {}, record.get("timings") or {}
    stages = [v for v in timings.values() if isinstance(v, (int, float))]
    seconds = sum(stages) if stages else record.get("latency")
    return {
        "visual_tokens": usage.get("visual_tokens"),
        "seconds": seconds,
        "peak_memory": record.get("peak_memory"),
        "frame_times": [video.get("timestamps", []) for video in record.get("videos") or []],
    }


def _judged(
    question: Question, text: str, rule: str, record_spans: list[dict] | None = None
) -> dict[str, Any]:
    """What was read from `text` (or, for grounding, the spans the pipeline read from it) and
    whether it is right (None: no answer read)."""
    if question.kind == "choice":
        letter = extract_choice(text, question.options or [], rule=rule)
        right = None if letter is None else letter == question.answer
        return {"extracted": letter, "correct": right}
    if question.kind == "grounding":
        spans = [(span["start"], span["end"]) for span in record_spans or []]
        if record_spans is None:  # a server that does not read spans: read them here
            spans = [(span.start, span.end) for span in read_spans(text)]
        first = spans[0] if spans else None
        value = max(iou(first, ref) for ref in question.spans or [(0.0, 0.0)])
        right = None if first is None else value >= 0.5
        return {"extracted": list(first) if first else None, "iou": value, "correct": right}
    refs = question.references
    if not text.strip():
        return {"extracted": None, "correct": None, "contains": False}
    return {
        "extracted": text.strip(),
        "correct": exact_match(text, refs),
        "contains": contains_match(text, refs),
    }


def score_question(question: Question, record: Mapping[str, Any] | None, rule: str) -> dict:
    """One line of `predictions.jsonl`: the question's answer, what was read, right or not."""
    line: dict[str, Any] = {"id": question.id, "kind": question.kind}
    if record is None or "error" in record:
        text = None
        judged: dict[str, Any] = {"extracted": None, "correct": None}
        if question.kind == "grounding":
            judged["iou"] = 0.0
        if record is not None:
            line["error"] = record["error"]
    else:
        text = str(record.get("text", ""))
        judged = _judged(question, text, rule, record.get("spans"))
    return {
        **line,
        "prediction": text,
        **judged,
        "groups": question.groups,
        **_measures(record or {}),
    }


def _share(values: Sequence[float]) -> dict[str, Any]:
    """A mean with its 95% bootstrap interval and count."""
    if not values:
        return {"value": 0.0, "ci": None, "count": 0}
    low, high = bootstrap_ci(values)
    return {"value": sum(values) / len(values), "ci": [low, high], "count": len(values)}


def _choice_scores(lines: list[dict[str, Any]]) -> dict[str, Any]:
    keys = sorted({k for line in lines for k in line["groups"]})
    groups = {
        key: {
            value: _share([1.0 if o else 0.0 for o in outcomes])
            for value, outcomes in group_outcomes(lines, key).items()
        }
        for key in keys
    }
    return {
        "accuracy": _share([1.0 if line["correct"] else 0.0 for line in lines]),
        "no_answer": sum(1 for line in lines if line["correct"] is None),
        "groups": groups,
    }


def _grounding_scores(lines: list[dict[str, Any]], questions: dict[str, Question]) -> dict:
    pairs = []
    for line in lines:
        pred = tuple(line["extracted"]) if line["extracted"] else None
        refs = questions[line["id"]].spans or [(0.0, 0.0)]
        pairs.append((pred, max(refs, key=lambda ref: iou(pred, ref))))  # type: ignore[arg-type]
    scores: dict[str, Any] = grounding_scores(pairs)  # type: ignore[arg-type]
    scores["miou_ci"] = _share([line["iou"] for line in lines])["ci"]
    scores["no_answer"] = sum(1 for line in lines if line["correct"] is None)
    return scores


def _open_scores(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "exact": _share([1.0 if line["correct"] else 0.0 for line in lines]),
        "contains": _share([1.0 if line.get("contains") else 0.0 for line in lines]),
        "no_answer": sum(1 for line in lines if line["correct"] is None),
    }


def summarize(eval_set: EvalSet, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """`scores.json`: per kind of question the scores with intervals, and the no-answers."""
    by_id = {q.id: q for q in eval_set.questions}
    scores: dict[str, Any] = {
        "set": eval_set.name,
        "rule": eval_set.rule,
        "questions": len(lines),
        "errors": sum(1 for line in lines if "error" in line),
    }
    kinds = {
        "choice": lambda ls: _choice_scores(ls),
        "grounding": lambda ls: _grounding_scores(ls, by_id),
        "open": lambda ls: _open_scores(ls),
    }
    for kind, score in kinds.items():
        mine = [line for line in lines if line["kind"] == kind]
        if mine:
            scores[kind] = score(mine)
    return scores


def score_answers(
    eval_set: EvalSet,
    records: Mapping[str, Mapping[str, Any]],
    folder: Path,
    judge: Judge | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Score every question from `records` (by id), open answers also by `judge` when given;
    write predictions.jsonl and scores.json. The scores and the predictions' lines."""
    lines = [score_question(q, records.get(q.id), eval_set.rule) for q in eval_set.questions]
    if judge is not None:
        from vidtt.eval.judge import judge_lines

        judge_lines(lines, {q.id: q for q in eval_set.questions}, judge)
    with (folder / PREDICTIONS).open("w", encoding="utf-8") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    scores = summarize(eval_set, lines)
    if judge is not None and "open" in scores:
        from vidtt.eval.judge import judge_scores

        opened = [line for line in lines if line["kind"] == "open"]
        scores["open"]["judge"] = judge_scores(opened, judge.name)
    (folder / SCORES).write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return scores, lines


def _mean(values: Sequence[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, (int, float))]
    return sum(numbers) / len(numbers) if numbers else None


def cost_of(lines: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Per question answered: mean visual tokens and seconds; the peak memory of all."""
    answered = [line for line in lines if line.get("prediction") is not None]
    peaks = [line["peak_memory"] for line in answered if line.get("peak_memory")]
    return {
        "visual_tokens": _mean([line.get("visual_tokens") for line in answered]),
        "seconds": _mean([line.get("seconds") for line in answered]),
        "peak_memory_bytes": max(peaks) if peaks else None,
        "questions": len(lines),
    }


def outcomes_of(lines: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per question of the headline kind (choice, else grounding, else open) its outcome:
    1.0 or 0.0 (right or not; no answer is wrong), the IoU for grounding."""
    kinds = {line["kind"] for line in lines}
    kind = next((k for k in ("choice", "grounding", "open") if k in kinds), None)
    if kind == "grounding":
        return {line["id"]: float(line["iou"]) for line in lines if line["kind"] == kind}
    return {line["id"]: 1.0 if line["correct"] else 0.0 for line in lines if line["kind"] == kind}


def table(scores: Mapping[str, Any]) -> list[str]:
    """A short table of `scores`: one line per score, with its interval and count."""

    def row(name: str, share: Mapping[str, Any], extra: str = "") -> str:
        ci = share.get("ci")
        span = f"[{ci[0] * 100:5.1f}, {ci[1] * 100:5.1f}]" if ci else ""
        return f"{name:<28} {share['value'] * 100:6.1f}  {span:<16} n={share['count']}{extra}"

    rows = [f"{'score':<28} {'%':>6}  {'95% interval':<16} count"]
    if "choice" in scores:
        choice = scores["choice"]
        rows.append(row("accuracy", choice["accuracy"], f", no answer {choice['no_answer']}"))
        for key, groups in choice["groups"].items():
            rows.extend(row(f"  {key}={value}", share) for value, share in groups.items())
    if "grounding" in scores:
        g = scores["grounding"]
        ci = {"ci": g["miou_ci"], "count": g["count"]}
        rows.append(row("mIoU", {"value": g["miou"], **ci}, f", no span {g['no_answer']}"))
        rows.extend(
            row(f"  R@{t}", {"value": g[f"r@{t}"], "ci": None, "count": g["count"]})
            for t in ("0.3", "0.5", "0.7")
        )
    if "open" in scores:
        rows.append(row("exact match", scores["open"]["exact"]))
        rows.append(row("contains match", scores["open"]["contains"]))
        if "judge" in scores["open"]:
            judged = scores["open"]["judge"]
            extra = f", no verdict {judged['no_verdict']}"
            rows.append(row("judged correct", judged["accuracy"], extra))
    return rows
