"""One kind of question for every benchmark, and the documented JSONL format for one's own set.

A `Question` is what `vidtt eval` asks: a video, a question, and what counts as right (an
option letter, reference answers, or time spans). `read_questions` reads the JSONL format;
every problem in the file is found and reported together, in one `QuestionsError`, before any
model loads.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vidtt.errors import OptionsError

Kind = Literal["choice", "open", "grounding"]
Span = tuple[float, float]
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_LISTED = 20  # problems an error lists before it counts the rest
KNOWN_FIELDS = ("id", "video", "question", "options", "answer", "answers", "spans", "start", "end")
_LETTER_PREFIX = re.compile(r"^\s*\(?([A-Z])[.):]\s*")


class QuestionsError(OptionsError):
    """A question set (a JSONL file or a benchmark's files) has problems; all are listed."""


class Question(BaseModel):
    """One question of a set: a video, a question and what counts as the right answer.

    `kind` says which: "choice" (`options`, plain texts lettered A, B, ...; `answer` a letter),
    "open" (`answer` a list of reference answers) or "grounding" (`spans`, seconds).
    `groups` holds the fields accuracy is broken down by (`category`, `duration`, `task`, ...).
    `start`/`end` bound the clip to watch when the benchmark gives bounds.
    """

    model_config = ConfigDict(frozen=True)
    id: str
    video: Path
    question: str
    kind: Kind
    options: list[str] | None = None
    answer: str | list[str] | None = None
    spans: list[Span] | None = None
    groups: dict[str, str] = Field(default_factory=dict)
    start: float | None = None
    end: float | None = None

    @property
    def references(self) -> list[str]:
        """The right answer(s) as texts: the option's text for a choice, the references else."""
        if self.kind == "choice" and self.options and isinstance(self.answer, str):
            return [self.options[LETTERS.index(self.answer)]]
        if isinstance(self.answer, list):
            return list(self.answer)
        return [self.answer] if self.answer else []


def plain_options(options: list[str]) -> list[str]:
    """Options without their letters: `["A. cat", "B. dog"]` -> `["cat", "dog"]`.

    Letters are removed only when every option carries its own (A, B, C... in order).
    """
    found = [_LETTER_PREFIX.match(o) for o in options]
    if all(m and m.group(1) == LETTERS[i] for i, m in enumerate(found)):
        return [o[m.end() :].strip() for o, m in zip(options, found, strict=True) if m]
    return [o.strip() for o in options]


def answer_letter(options: list[str], answer: Any) -> str | None:
    """The letter of `answer` among `options`: a letter ("B", "(B)", "B."), an index or a text."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return LETTERS[answer] if 0 <= answer < len(options) else None
    if not isinstance(answer, str):
        return None
    text = answer.strip()
    bare = text.strip("().: ")
    if len(bare) == 1 and bare.upper() in LETTERS[: len(options)]:
        return bare.upper()
    prefix = _LETTER_PREFIX.match(text)
    plain = text[prefix.end() :].strip() if prefix else text
    for i, option in enumerate(options):
        if text == option or plain == option:
            return LETTERS[i]
    return None


def raise_problems(source: str, problems: list[str]) -> None:
    """Raise one `QuestionsError` listing `problems` (the first 20, then a count), if any."""
    if not problems:
        return
    listed = "; ".join(problems[:MAX_LISTED])  # one line, as every vidtt error
    more = len(problems) - MAX_LISTED
    tail = f"; ... and {more} more" if more > 0 else ""
    raise QuestionsError(
        f"{source}: {len(problems)} problem(s), fix them and run again: {listed}{tail}"
    )


def missing_videos(questions: list[Question]) -> list[str]:
    """One line per question whose video file (or frame folder) does not exist."""
    return [f"{q.id}: video not found: {q.video}" for q in questions if not q.video.exists()]


def read_questions(path: str | Path) -> list[Question]:
    """Read a question set in vidtt's JSONL format (docs/eval.md), checking every line.

    Raises one `QuestionsError` listing every problem: bad JSON, missing fields, an answer
    outside the options, a bad span, a video that does not exist, a mistyped field name.
    """
    path = Path(path)
    if not path.is_file():
        raise QuestionsError(f"{path}: no such file; give a JSONL file of questions")
    questions: list[Question] = []
    problems: list[str] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        found = _read_line(line, number, path, problems)
        if found is None:
            continue
        if found.id in seen:
            problems.append(f"line {number}: id {found.id!r} is used twice")
        seen.add(found.id)
        questions.append(found)
    if not questions and not problems:
        problems.append("no questions (the file is empty)")
    raise_problems(str(path), problems)
    return questions


def _read_line(line: str, number: int, path: Path, problems: list[str]) -> Question | None:
    """The question on one line, or None with its problems appended (prefixed `line n:`)."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        problems.append(f"line {number}: not valid JSON ({e.msg}, column {e.colno})")
        return None
    if not isinstance(row, dict):
        problems.append(f"line {number}: a JSON object is needed, not {type(row).__name__}")
        return None
    mine: list[str] = []
    groups = _groups(row, mine)
    video, question = row.get("video"), row.get("question")
    for name, value in (("video", video), ("question", question)):
        if not isinstance(value, str) or not value.strip():
            mine.append(f"missing {name!r} (a non-empty string)")
    if isinstance(video, str) and video.strip() and not (path.parent / video).exists():
        mine.append(f"video not found: {(path.parent / video).resolve()}")
    kind, options, answer, spans = _target(row, mine)
    start, end = _bounds(row, mine)
    problems.extend(f"line {number}: {p}" for p in mine)
    if mine or kind is None:
        return None
    return Question(
        id=str(row.get("id", f"{path.stem}-{number}")),
        video=(path.parent / str(video)).resolve(),
        question=str(question),
        kind=kind,
        options=options,
        answer=answer,
        spans=spans,
        groups=groups,
        start=start,
        end=end,
    )


def _groups(row: dict[str, Any], problems: list[str]) -> dict[str, str]:
    """Every field vidtt does not know, as a group field; a near miss of a known one is refused."""
    groups: dict[str, str] = {}
    for key, value in row.items():
        if key in KNOWN_FIELDS:
            continue
        near = [k for k in KNOWN_FIELDS if _distance(key.lower(), k) <= (1 if len(k) <= 5 else 2)]
        if near:
            problems.append(f"unknown field {key!r} (did you mean {near[0]!r}?)")
        elif isinstance(value, (str, int, float, bool)):
            groups[key] = str(value)
        elif value is not None:
            problems.append(f"field {key!r} is a {type(value).__name__}; group fields take text")
    return groups


def _target(
    row: dict[str, Any], problems: list[str]
) -> tuple[Kind | None, list[str] | None, str | list[str] | None, list[Span] | None]:
    """What counts as right: (kind, options, answer, spans), with problems appended."""
    if "spans" in row:
        spans = _spans(row["spans"], problems)
        return ("grounding" if spans else None), None, None, spans
    if "options" in row:
        return _choice(row, problems)
    answers = row.get("answers", row.get("answer"))
    if isinstance(answers, str):
        answers = [answers]
    if answers is None:
        problems.append("no 'options'+'answer', 'answer'/'answers' or 'spans': nothing to score")
        return None, None, None, None
    if (
        not isinstance(answers, list)
        or not answers
        or not all(isinstance(a, str) and a.strip() for a in answers)
    ):
        problems.append("'answer'/'answers' must be a non-empty string or list of strings")
        return None, None, None, None
    return "open", None, answers, None


def _choice(
    row: dict[str, Any], problems: list[str]
) -> tuple[Kind | None, list[str] | None, str | None, None]:
    """A multiple-choice question's plain options and answer letter."""
    options = row["options"]
    if not isinstance(options, list) or len(options) < 2 or len(options) > len(LETTERS):
        problems.append("'options' must be a list of 2 to 26 strings")
        return None, None, None, None
    if not all(isinstance(o, str) and o.strip() for o in options):
        problems.append("'options' must all be non-empty strings")
        return None, None, None, None
    plain = plain_options(options)
    if "answer" not in row:
        problems.append("'options' without an 'answer' (a letter, an index or an option's text)")
        return None, None, None, None
    letter = answer_letter(plain, row["answer"])
    if letter is None:
        shown = ", ".join(LETTERS[: len(plain)])
        problems.append(f"answer {row['answer']!r} is not one of the options ({shown} or a text)")
        return None, None, None, None
    return "choice", plain, letter, None


def _spans(value: Any, problems: list[str]) -> list[Span] | None:
    """`[[start, end], ...]` (or one `[start, end]`) in seconds, each with end > start >= 0."""
    if isinstance(value, list) and len(value) == 2 and all(_number(v) for v in value):
        value = [value]
    if not isinstance(value, list) or not value:
        problems.append("'spans' must be a list of [start, end] pairs in seconds")
        return None
    spans: list[Span] = []
    for pair in value:
        if not (isinstance(pair, list) and len(pair) == 2 and all(_number(v) for v in pair)):
            problems.append(f"span {pair!r} is not a [start, end] pair of numbers")
        elif pair[1] <= pair[0] or pair[0] < 0:
            problems.append(f"span {pair!r}: end must be after start, and start at least 0")
        else:
            spans.append((float(pair[0]), float(pair[1])))
    return spans if len(spans) == len(value) else None


def _bounds(row: dict[str, Any], problems: list[str]) -> tuple[float | None, float | None]:
    """The optional clip bounds `start`/`end` (seconds)."""
    start, end = row.get("start"), row.get("end")
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not _number(value) or value < 0):
            problems.append(f"{name!r} must be a number of seconds >= 0, not {value!r}")
            return None, None
    if start is not None and end is not None and end <= start:
        problems.append(f"'end' ({end}) must be after 'start' ({start})")
        return None, None
    return (None if start is None else float(start)), (None if end is None else float(end))


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _distance(a: str, b: str) -> int:
    """Edit distance with adjacent swaps counted once (`vidoe` is 1 from `video`)."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]
