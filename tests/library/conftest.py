"""The library tests' shared fixture."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The colour embedder installed (an entry point in a site folder) and a library folder."""
    from vidtt.testing.embedders import colour_plugin

    return {**colour_plugin(tmp_path / "site"), "VIDTT_LIBRARY_DIR": str(tmp_path / "libraries")}
