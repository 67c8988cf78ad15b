"""What the tests that start `vidtt serve` share: an in-process server and the tiny pipeline it
serves, waiting for one to come up, its error objects, its /metrics, a temp folder of its own
and a local http server of files to fetch."""

from __future__ import annotations

import contextlib
import functools
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
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
def serve_process(model: Path, log: Path, *extra: str) -> Iterator[str]:
    """`vidtt serve --model MODEL EXTRA...` as a process on 127.0.0.1 (a free port, the CPU,
    no access log, no VIDTT_API_KEY from this environment), its output in `log`: its base
    URL once healthy; killed after, and its log must hold no traceback."""
    from vidtt.testing.streams import free_port

    port = free_port()
    vidtt = str(Path(sys.executable).with_name("vidtt"))
    args = [vidtt, "serve", "--model", str(model), "--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "VIDTT_API_KEY"}
    env["VIDTT_BACKEND"] = "cpu"
    with log.open("w") as out:
        process = subprocess.Popen(
            [*args, "--no-access-log", *extra], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, process, log)
        yield base
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()


def tiny_pipeline(llava: Any, frames: int = 4, **extra: Any) -> Any:
    """A pipeline over the session's tiny llava engine: `frames` uniform frames, 4 new tokens."""
    import vidtt

    return vidtt.Pipeline(
        model=llava.config.model,
        engine=llava.engine,
        sampler_options={"num_frames": frames},
        generation={"max_new_tokens": 4},
        **extra,
    )


@contextlib.contextmanager
def moved_temp(factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """The process's temp folder moved to a new one (Python's and, for native code, TMPDIR),
    to see what a server leaves in it."""
    factory.getbasetemp()  # made before the temp folder moves
    folder = factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(folder))
        patch.setattr(tempfile, "tempdir", str(folder))
        yield folder


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


def error_of(response: Any, status: int, *words: str) -> dict[str, Any]:
    """The OpenAI error object of `response`: its status, its four fields, one line that holds
    each of `words`."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    message = error["message"]
    assert message and "\n" not in message and "Traceback" not in message, message
    for word in words:
        assert word in message, message
    return error  # type: ignore[no-any-return]


class QuietServer(ThreadingHTTPServer):
    """An http server on 127.0.0.1 that logs nothing, not even a client's hang-up."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_server(handler: type[BaseHTTPRequestHandler] | Any) -> Iterator[str]:
    """`handler` served on a free port of 127.0.0.1 (its base URL), until leaving."""
    httpd = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def http_files(folder: Path) -> contextlib.AbstractContextManager[str]:
    """The files of `folder` over http on 127.0.0.1 (its base URL), until leaving."""
    return http_server(functools.partial(QuietFiles, directory=str(folder)))


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
