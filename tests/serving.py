"""What the tests that start `vidtt serve` share: waiting for it to come up, and reading its
/metrics."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest


def wait_healthy(
    base: str, process: subprocess.Popen[Any] | None, log: Path, seconds: float = 180
) -> None:
    """Wait until `GET base/health` answers 200; fail with the server's log if `process`
    exits first or `seconds` pass."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if process is not None and process.poll() is not None:
            pytest.fail(f"vidtt serve exited with {process.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    pytest.fail(f"vidtt serve did not come up:\n{log.read_text()}")


@contextlib.contextmanager
def serving(pipeline: Any, **settings: Any) -> Iterator[tuple[str, Any]]:
    """An in-process server as `vidtt serve` runs it (`uvicorn_server`, `ServeSettings`), on a
    free port of 127.0.0.1: its base URL and app; stopped on leaving (it must stop)."""
    import uvicorn

    from vidtt.serve.app import ServeSettings, create_app, uvicorn_server
    from vidtt.testing.streams import free_port

    port = free_port()
    app = create_app(pipeline, ServeSettings(**settings))
    server = uvicorn_server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, None, Path(os.devnull))
        yield base, app
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive(), "the server did not stop"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(base: str) -> Samples:
    """Every sample of a server's /metrics, by (name, labels)."""
    from prometheus_client import parser

    response = httpx.get(f"{base}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: Samples = {}
    for family in parser.text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
