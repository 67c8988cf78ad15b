"""The log lines of `vidtt serve --log-format json`: one JSON object a line on stderr, for
uvicorn's loggers, vidtt's, Python warnings and anything else that logs (stdlib `logging`).

    {"time": "2025-05-01T12:00:00.123Z", "level": "INFO", "logger": "vidtt.serve.access",
     "message": "127.0.0.1:50312 - \\"GET /health HTTP/1.1\\" 200 1.2 ms", "method": "GET",
     "path": "/health", "status": 200, "client": "127.0.0.1:50312", "duration_ms": 1.2}

Access lines come from vidtt's middleware (`vidtt.serve.metrics.RequestMetrics`), written once
a response has ended (so they have its duration); uvicorn's own access lines are off."""

from __future__ import annotations

import json
import logging
import logging.config
from datetime import datetime, timezone
from typing import Any

ACCESS = "vidtt.serve.access"
BASE_FIELDS = ("time", "level", "logger", "message")


def iso_time(created: float) -> str:
    """A record's time in ISO 8601, UTC, to the millisecond: 2025-05-01T12:00:00.123Z."""
    stamp = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JSONFormatter(logging.Formatter):
    """A log record as one line of JSON: time, level, logger, message, then the access fields
    (`extra={"fields": {...}}`, or read from a uvicorn access record) and any traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update((k, v) for k, v in fields.items() if k not in BASE_FIELDS)
        elif record.name == "uvicorn.access":
            line.update(uvicorn_access(record.args))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def uvicorn_access(args: Any) -> dict[str, Any]:
    """The fields of a uvicorn access record: (client, method, path, http version, status)."""
    if not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"method": method, "path": path, "status": status, "client": client}


def access_line(scope: Any, status: int, seconds: float) -> tuple[str, dict[str, Any]]:
    """An HTTP request's access line: its message and its fields (the path without its query)."""
    host = scope.get("client")
    client = f"{host[0]}:{host[1]}" if host else ""
    method, path = scope.get("method", ""), scope.get("path", "")
    milliseconds = round(seconds * 1000, 3)
    version = scope.get("http_version", "1.1")
    message = f'{client} - "{method} {path} HTTP/{version}" {status} {milliseconds:g} ms'
    fields = {
        "method": method,
        "path": path,
        "status": status,
        "client": client,
        "duration_ms": milliseconds,
    }
    return message, fields


def log_config(level: str = "info", access_log: bool = True) -> dict[str, Any]:
    """The `logging.config.dictConfig` (uvicorn's `log_config`) of JSON lines on stderr at
    `level`: uvicorn's loggers, `vidtt`'s, and the root (warnings and up) for the rest."""
    name = level.upper()
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JSONFormatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": name, "propagate": False},
            "uvicorn.error": {"level": name},
            "uvicorn.access": {"handlers": [], "propagate": False},  # vidtt writes its own
            "vidtt": {"handlers": ["stderr"], "level": name, "propagate": False},
            ACCESS: {"level": "NOTSET" if access_log else "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }
    return config


def use_json_logs(level: str = "info", access_log: bool = True) -> dict[str, Any]:
    """Log as JSON lines from now on (Python warnings and transformers' messages too);
    returns the config, for uvicorn."""
    config = log_config(level, access_log)
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return config
    transformers_logging.disable_default_handler()  # its own plain-text handler
    transformers_logging.enable_propagation()
    return config
