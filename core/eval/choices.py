"""Multiple-choice scoring: the chosen letter read from an answer, by each benchmark's rule.

`extract_choice` returns the letter an answer chose, or None when it chose none. The rules
(docs/eval.md, "How answers are scored"):

- ``videomme`` (default): Video-MME's ``extract_characters_regex`` - a few English prefixes
  removed, then the first capital A-D anywhere in the text. MLVU in lmms-eval uses it too.
- ``longvideobench``: the same with A-E and every prefix removed; where the original picks a
  random letter, this returns None.
- ``mvbench``: MVBench's ``check_ans`` - the first word, lowercased, must be ``a``, ``(a``,
  ``a)``, ``(a)`` or contain ``(a)`` (dots ignored).
- ``mlvu``: MLVU's ``check_ans`` - the character before the first ``)``, else the whole text.
- ``strict``: vidtt's own, for one's own sets - a letter alone (any case, with ``( ) . :``),
  the option's text, or exactly one letter named; two letters name none.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vidtt.errors import OptionsError
from vidtt.eval.open_answers import normalize as _norm

LETTERS = string.ascii_uppercase

# Video-MME's list as its code runs it: two pairs lack a comma between them, so Python joins
# each pair into one string and neither "The best option is" nor "Best answer:" is removed.
_VIDEOMME_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option isThe correct option is",
    "Best answer:Best option:",
)
_LVB_PREFIXES = (
    "The best answer is",
    "The correct answer is",
    "The answer is",
    "The answer",
    "The best option is",
    "The correct option is",
    "Best answer:",
    "Best option:",
)
_STRICT_PREFIX = re.compile(
    r"^\s*(?:(?:the\s+)?(?:best|correct|final|right)?\s*(?:answer|option|choice)"
    r"(?:\s+is)?\s*[:\-]?|answer\s*:)\s*",
    re.IGNORECASE,
)
_LEADING_LETTER = re.compile(r"^\(?([A-Za-z0-9])(?:\)|[.:](?=\s|$)|$)\s*(.*)$", re.DOTALL)
_ARTICLE_NEXT = re.compile(r"\s+(?!(?:or|and|nor|is)\b)[a-z]")
_MENTION = re.compile(r"(?<![\w'])(\(?)([A-Z])(\)?)(?![\w'])")


def _valid(options: Sequence[str], letters: str) -> str:
    """The letters that name an option: one per option, or all of ``letters`` when none given."""
    return letters[: len(options)] if options else letters


def _first_of(text: str, searched: str, valid: str) -> str | None:
    """The first character of ``searched`` in ``text``, kept only if it names an option."""
    hit = next((c for c in text if c in searched), None)
    return hit if hit is not None and hit in valid else None


def _videomme(text: str, options: Sequence[str], letters: str) -> str | None:
    s = text.strip()
    for prefix in _VIDEOMME_PREFIXES:
        s = s.replace(prefix, "")
    return _first_of(s, "ABCD", _valid(options, letters))


def _longvideobench(text: str, options: Sequence[str], letters: str) -> str | None:
    s = text.strip()
    for prefix in _LVB_PREFIXES:
        s = s.replace(prefix, "")
    return _first_of(s, "ABCDE", _valid(options, letters))


def _mvbench(text: str, options: Sequence[str], letters: str) -> str | None:
    words = text.lower().split(" ")
    first = words[0]
    if not any(c in first for c in "abcdefg"):
        return None
    bare = first.replace(".", "")
    hits = [
        x for x in _valid(options, letters) if bare in f"({x.lower()})" or f"({x.lower()})" in first
    ]
    return hits[0] if len(hits) == 1 else None


def _mlvu(text: str, options: Sequence[str], letters: str) -> str | None:
    chosen = text[text.index(")") - 1 : text.index(")")] if ")" in text else text
    return chosen if chosen and chosen in _valid(options, letters) else None


def _option_text(option: str, letter: str) -> str:
    """An option without a leading "A." / "(A)" / "A)" label naming its own letter."""
    return re.sub(rf"^\s*\(?{letter}[.):]\s*", "", option)


def _by_text(text: str, options: Sequence[str], valid: str) -> str | None:
    """The letter whose option text the answer is, or contains (the longest when nested)."""
    answer = f" {_norm(text)} "
    texts = {x: _norm(_option_text(o, x)) for x, o in zip(valid, options, strict=False)}
    texts = {x: t for x, t in texts.items() if t}
    exact = [x for x, t in texts.items() if answer.strip() == t]
    if exact:
        return exact[0] if len(exact) == 1 else None
    inside = [x for x, t in texts.items() if f" {t} " in answer]
    kept = [x for x in inside if not any(texts[x] in texts[y] and x != y for y in inside)]
    return kept[0] if len(kept) == 1 else None


def _mentions(text: str, valid: str) -> set[str]:
    """Capital letters standing alone as words ("C", "(C)", "C."), less articles and "I"."""
    found = set()
    for m in _MENTION.finditer(text):
        letter, bracketed = m.group(2), bool(m.group(1) or m.group(3))
        rest = text[m.end() :]
        if letter == "I" and letter not in valid and not bracketed:
            continue
        if letter == "A" and not bracketed and _ARTICLE_NEXT.match(rest):
            continue
        found.add(letter)
    return found


def _strict(text: str, options: Sequence[str], letters: str) -> str | None:
    valid = _valid(options, letters)
    s = text.strip()
    while (m := _STRICT_PREFIX.match(s)) and m.end() > 0:
        s = s[m.end() :]
    lead = _LEADING_LETTER.match(s)
    if lead:
        letter = lead.group(1).upper()
        others = _mentions(lead.group(2), valid) - {letter}
        if not others or _by_text(lead.group(2), options, valid) == letter:
            return letter if letter in valid else None
        return None
    if options and (by_text := _by_text(s, options, valid)):
        return by_text
    named = _mentions(s, valid)
    if len(named) != 1:
        return None
    letter = named.pop()
    return letter if letter in valid else None


RULES: dict[str, Callable[[str, Sequence[str], str], str | None]] = {
    "videomme": _videomme,
    "longvideobench": _longvideobench,
    "mvbench": _mvbench,
    "mlvu": _mlvu,
    "strict": _strict,
}


def extract_choice(
    text: str, options: Sequence[str], letters: str = LETTERS, rule: str = "videomme"
) -> str | None:
    """The option letter ``text`` chose under ``rule`` (see `RULES`), or None for no answer."""
    try:
        extract = RULES[rule]
    except KeyError:
        raise OptionsError(
            f"unknown answer rule {rule!r}: use one of {', '.join(sorted(RULES))}"
        ) from None
    return extract(text or "", options, letters)


@dataclass(frozen=True)
class Outcome:
    """One scored question: its id, whether it was right (None: no answer) and its groups."""

    id: str
    correct: bool | None
    groups: Mapping[str, str] = field(default_factory=dict)


Record = Outcome | Mapping[str, Any]


def accuracy(outcomes: Iterable[bool | None], skip_unanswered: bool = False) -> float:
    """Share right; None (no answer) counts wrong, or is left out with ``skip_unanswered``.

    Video-MME's own script leaves unanswered questions out; lmms-eval counts them wrong.
    An empty set scores 0.0.
    """
    seen = [o for o in outcomes if not (skip_unanswered and o is None)]
    return sum(1 for o in seen if o) / len(seen) if seen else 0.0


def _field(record: Record, name: str) -> Any:
    if isinstance(record, Outcome):
        return record.correct if name == "correct" else record.groups.get(name)
    return record.get(name, record.get("groups", {}).get(name))


def group_outcomes(records: Iterable[Record], key: str) -> dict[str, list[bool | None]]:
    """Each value of field ``key`` with its questions' outcomes; "(none)" where it is missing."""
    groups: dict[str, list[bool | None]] = {}
    for record in records:
        value = _field(record, key)
        groups.setdefault("(none)" if value is None else str(value), []).append(
            _field(record, "correct")
        )
    return dict(sorted(groups.items()))


def by_group(
    records: Iterable[Record], key: str, skip_unanswered: bool = False
) -> dict[str, float]:
    """Accuracy per value of ``key`` (a category, a duration group), sorted by value."""
    grouped = group_outcomes(records, key)
    return {name: accuracy(o, skip_unanswered) for name, o in grouped.items()}


def macro_accuracy(per_group: Mapping[str, float]) -> float:
    """The mean of per-group accuracies (MLVU's M-Avg); 0.0 for no groups."""
    return sum(per_group.values()) / len(per_group) if per_group else 0.0
