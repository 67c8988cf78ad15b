"""Output records, shared by local and Ray runs: what a record holds, which one of an id is kept,
and how an output file is appended to, read back and rewritten (atomically).

A record is `{"id": ..., **answer}` or `{"id": ..., "error": message}`, one JSON object a line.
Per id the last answer wins, else the last error; lines a crash cut short are skipped.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from vidtt.errors import VidttError


def error_text(exc: BaseException) -> str:
    """An error record's message: a vidtt error's own text, else `TypeName: first line`."""
    if isinstance(exc, VidttError):
        return str(exc)
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


def answer_record(rid: Any, answer: Any) -> dict[str, Any]:
    """The record of one request: the Answer's fields, or the error it got instead."""
    if isinstance(answer, BaseException):
        return {"id": rid, "error": error_text(answer)}
    return {"id": rid, **answer.model_dump()}


def record_line(record: dict[str, Any]) -> str:
    """A record as its output line (without the newline)."""
    return json.dumps(record, ensure_ascii=False)


def output_records(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number from 0, record) for every output line that holds a record with an id;
    lines a crash cut short are skipped."""
    for number, line in enumerate(lines):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            continue
        if isinstance(record, dict) and "id" in record:
            yield number, record


def replaces(record: dict[str, Any], before: dict[str, Any] | None) -> bool:
    """Whether a later record for the same id is the one to keep: an answer always, an error
    only over an error."""
    return "error" not in record or before is None or "error" in before


def read_output(path: Path) -> dict[str, dict[str, Any]]:
    """The record kept per id in an earlier output: its last answer, else its last error.
    Lines cut short by a crash are ignored."""
    kept: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return kept
    with path.open(encoding="utf-8", errors="replace") as lines:
        for _, record in output_records(lines):
            key = str(record["id"])
            if replaces(record, kept.get(key)):
                kept[key] = record
    return kept


def end_line(path: Path) -> None:
    """End a last line a crash cut short, so records appended next start on their own line
    (the torn line is dropped when the file is compacted)."""
    if not path.exists():
        return
    with path.open("rb+") as out:
        size = out.seek(0, os.SEEK_END)
        if size:
            out.seek(size - 1)
            if out.read(1) != b"\n":
                out.write(b"\n")


def append(path: Path, records: list[dict[str, Any]]) -> None:
    """Append `records` to the output file `path` (nothing, not even the file, when none)."""
    if records:
        with path.open("a", encoding="utf-8") as out:
            for record in records:
                out.write(record_line(record) + "\n")


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """Write a whole file through a temporary one and a rename, so a crash leaves the old or the
    new file, never half."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.writelines(line + "\n" for line in lines)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def compact(path: Path, order: list[Any]) -> None:
    """Rewrite `path` atomically with one record per id (ids of `order` first, in that order)."""
    records = read_output(path)
    first = [str(rid) for rid in order if str(rid) in records]
    listed = set(first)
    rest = [key for key in records if key not in listed]
    write_lines(path, (record_line(records[key]) for key in first + rest))
