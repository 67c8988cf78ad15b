"""Turn pydantic validation errors into plain one-line messages (no pydantic wording)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

Loc = tuple[str | int, ...]

# pydantic's own prefixes and phrasings, and what a user reads instead
_REWRITES = [
    (re.compile(r"^(Value error|Assertion failed), "), ""),
    (re.compile(r"^Input should be "), "should be "),
    (re.compile(r"^Input is too "), "is too "),
    (re.compile(r"^Field required$"), "is required"),
    (re.compile(r"^Extra inputs are not permitted$"), "unknown option"),
    (re.compile(r", unable to parse string as an? \w+$"), ""),
]
# loc parts pydantic adds for union members and validators, not field names
_TAG = re.compile(r"^(int|float|str|bool|bytes|none|list|dict|tuple|set)$|[\[\]]")


def message(item: Any) -> str:
    """One problem's text, with pydantic's phrasing replaced."""
    text = "unknown option" if item["type"] == "extra_forbidden" else str(item["msg"])
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text


def shown_input(item: Any) -> str:
    """` (got 'abc')` for a plain bad value, else nothing."""
    value = item.get("input")
    if item["type"] in ("missing", "extra_forbidden") or not isinstance(
        value, (str, int, float, bool)
    ):
        return ""
    shown = repr(value)
    return f" (got {shown[:40] + '...' if len(shown) > 40 else shown})"


def field_path(loc: Loc) -> Loc:
    """The loc without union-member and validator tags."""
    return tuple(p for p in loc if not (isinstance(p, str) and _TAG.search(p)))


def problems(error: ValidationError) -> list[tuple[Loc, str]]:
    """(field path, message) per field; a union's alternatives are joined with "or"."""
    found: dict[Loc, list[str]] = {}
    got: dict[Loc, str] = {}
    for item in error.errors():
        loc = field_path(tuple(item["loc"]))
        texts = found.setdefault(loc, [])
        text = message(item)
        if texts and text.startswith("should be "):
            text = text[len("should be ") :]
        if text not in texts:
            texts.append(text)
        got.setdefault(loc, shown_input(item))
    return [(loc, " or ".join(texts) + got[loc]) for loc, texts in found.items()]


def dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "value"


def describe(error: ValidationError) -> str:
    """`field.sub: message; other: message` for every problem pydantic found."""
    return "; ".join(f"{dotted(loc)}: {text}" for loc, text in problems(error))
