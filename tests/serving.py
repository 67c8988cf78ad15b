"""What the tests that start `vidtt serve` share: waiting for it to come up."""

from __future__ import annotations

import contextlib
import subprocess
import time
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
