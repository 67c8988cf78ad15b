"""The page at / of `vidtt serve`: plain HTML, CSS and JS shipped with the package (to be
written)."""

from __future__ import annotations

from typing import Any


def add_ui_routes(app: Any, server: Any) -> None:
    """Add the page's routes to `app` (none yet)."""
