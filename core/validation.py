"""Turn pydantic validation errors into one readable line."""

from __future__ import annotations

from pydantic import ValidationError


def describe(error: ValidationError) -> str:
    """`field.sub: message; other: message` for every problem pydantic found."""
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "value"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown option"
        parts.append(f"{where}: {message}")
    return "; ".join(parts)
