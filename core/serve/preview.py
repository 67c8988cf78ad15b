"""The JSON routes the page at / needs: the frames a request would sample, as small JPEG
thumbnails with their times, and the visual-token plan (to be written)."""

from __future__ import annotations

from typing import Any


def add_preview_routes(app: Any, server: Any) -> None:
    """Add the preview routes to `app` (none yet)."""
