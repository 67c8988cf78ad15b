"""The errors `vidtt serve` answers with: HTTP status and OpenAI's error object."""

from __future__ import annotations

import re
from typing import Any

from vidtt.errors import ContextOverflowError, GenerationError, LimitError, VidttError
from vidtt.urls import redact


class APIError(Exception):
    """An error answer: HTTP status and OpenAI's error object."""

    def __init__(
        self,
        message: str,
        status: int = 400,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.type = message, status, type
        self.param, self.code = param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def from_vidtt(exc: VidttError) -> APIError:
    """A vidtt error as the answer a client sees (never a traceback)."""
    message = redact(str(exc)) or type(exc).__name__
    if isinstance(exc, ContextOverflowError):
        return APIError(message, code="context_length_exceeded")
    if isinstance(exc, GenerationError):
        return APIError(message, status=500, type="server_error", code="generation_failed")
    if isinstance(exc, LimitError):
        return APIError(message, code="limit_exceeded")
    return APIError(message, code=_snake(type(exc).__name__))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower() + "_error"
