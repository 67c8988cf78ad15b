"""Open answers: exact and contains match after a SQuAD-style normalisation.

`normalize` lowercases, drops punctuation and the articles "a", "an", "the", and collapses
white space, so "The Eiffel tower." and "eiffel tower" are equal (docs/eval.md).
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def normalize(text: str) -> str:
    """Lowercase, punctuation removed, articles removed, white space collapsed."""
    text = (text or "").lower().translate(_PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _refs(refs: str | Sequence[str]) -> list[str]:
    return [refs] if isinstance(refs, str) else list(refs)


def exact_match(pred: str, refs: str | Sequence[str]) -> bool:
    """Whether ``pred`` equals any reference once both are normalised."""
    answer = normalize(pred)
    return any(answer == normalize(ref) for ref in _refs(refs))


def contains_match(pred: str, refs: str | Sequence[str]) -> bool:
    """Whether any non-empty normalised reference occurs in ``pred`` as whole words."""
    answer = f" {normalize(pred)} "
    return any((ref := normalize(r)) and f" {ref} " in answer for r in _refs(refs))
