"""`vidtt run`: a pipeline over a JSONL file of requests, resumable, one line out per request."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import IO, Any

from .errors import ConfigError, VidttError


def answered_ids(output: Path) -> set[str]:
    """Ids already answered (not failed) in an earlier run's output."""
    done: set[str] = set()
    if not output.exists():
        return done
    for line in output.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
        if isinstance(record, dict) and "error" not in record and "id" in record:
            done.add(str(record["id"]))
    return done


def check_job_files(input_path: Path, output_path: Path) -> None:
    """Fail before the model loads when the input is missing or the output cannot be written."""
    if not input_path.is_file():
        raise ConfigError(f"input file {input_path} does not exist: pass a JSONL file of requests")
    folder = output_path.parent
    if output_path.is_dir():
        raise ConfigError(f"--output {output_path} is a directory: pass a .jsonl file name")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with output_path.open("a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot write {output_path}: {exc.strerror or exc}") from None


def read_requests(path: Path) -> list[tuple[Any, Any]]:
    """(id, request or error message) per non-empty line; the id defaults to the line number."""
    if not path.is_file():
        raise ConfigError(f"input file {path} does not exist: pass a JSONL file of requests")
    requests: list[tuple[Any, Any]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            request = json.loads(line)
        except json.JSONDecodeError as exc:
            requests.append((number, f"line {number} is not JSON: {exc.msg}"))
            continue
        if not isinstance(request, dict):
            requests.append((number, f"line {number} is not a JSON object"))
            continue
        requests.append((request.get("id", number), request))
    return requests


class Progress:
    """A progress line with rate and ETA on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, stream: IO[str] = sys.stderr) -> None:
        self.total, self.done, self.stream = total, 0, stream
        self.started = time.monotonic()
        self.tty = stream.isatty()

    def step(self, note: str = "") -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        text = f"{self.done}/{self.total} ({rate:.2f}/s, ETA {eta:.0f} s){note}"
        if self.tty:
            self.stream.write(f"\r{text}\033[K")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"vidtt: {text}\n")
        self.stream.flush()


def run_jobs(
    pipeline: Any, input_path: Path, output_path: Path, timestamps: bool = False
) -> tuple[int, int, int]:
    """Answer every request not answered before; returns (answered, failed, skipped)."""
    requests = read_requests(input_path)
    done = answered_ids(output_path)
    todo = [(rid, req) for rid, req in requests if str(rid) not in done]
    progress = Progress(len(todo))
    answered = failed = 0
    with output_path.open("a", encoding="utf-8") as out:
        for rid, request in todo:
            record = answer_record(pipeline, rid, request, timestamps)
            failed += "error" in record
            answered += "error" not in record
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            out.flush()
            progress.step(f"  failed: {failed}" if failed else "")
    return answered, failed, len(requests) - len(todo)


def answer_record(
    pipeline: Any, rid: Any, request: Any, timestamps: bool = False
) -> dict[str, Any]:
    """The output line for one request: the Answer's fields, or `error`."""
    if isinstance(request, str):
        return {"id": rid, "error": request}
    try:
        videos = request.get("videos", request.get("video"))
        answer = pipeline.ask(videos, request.get("question", ""), timestamps=timestamps)
    except VidttError as exc:
        return {"id": rid, "error": str(exc)}
    return {"id": rid, **answer.model_dump()}
