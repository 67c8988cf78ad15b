"""Fixtures of the media tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The test's own cache folder (never ~/.cache), with no size set from outside."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("VIDTT_CACHE_DIR", str(folder))
    monkeypatch.delenv("VIDTT_CACHE_MAX_BYTES", raising=False)
    return folder
