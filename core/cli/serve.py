"""`vidtt serve`: its command-line options and the command (FastAPI and uvicorn load only when
it runs)."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vidtt import envs
from vidtt.cli.interrupt import Terminated, cancel, exit_interrupted
from vidtt.cli.options import (
    add_config_argument,
    add_model_options,
    add_request_options,
    subcommand,
)
from vidtt.cli.settings import build_pipeline, command_settings
from vidtt.engine.loading import with_frame_rule
from vidtt.errors import OptionsError, VidttError
from vidtt.urls import redact

API_KEY_VARIABLE = "VIDTT_API_KEY"


class MissingExtraError(VidttError):
    """A package of the `serve` extra is not installed."""


SERVE_EXTRA = ("fastapi", "uvicorn", "prometheus_client")  # what `vidtt serve` imports


def add_parser(sub: Any, common: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Register `vidtt serve` (same model, sampling and generation options as `vidtt ask`)."""
    serve = subcommand(sub, "serve", "serve a model over an OpenAI-compatible HTTP API", common)
    add_config_argument(serve)
    server = serve.add_argument_group("server")
    _add_address_options(server)
    _add_queue_options(server)
    _add_request_limits(server)
    _add_watch_options(server)
    _add_log_options(server)
    add_model_options(serve)
    add_request_options(serve)
    serve.set_defaults(func=cmd_serve)
    return serve


def _add_address_options(server: Any) -> None:
    """--host, --port, --api-key, --served-model-name, --allowed-local-media-path."""
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    server.add_argument("--port", type=int, default=8000, help="port to listen on (8000)")
    server.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_VARIABLE}, if set)",
    )
    server.add_argument(
        "--served-model-name",
        metavar="NAME",
        help="the model name clients send and see (default: --model)",
    )
    server.add_argument(
        "--allowed-local-media-path",
        metavar="DIR",
        help="serve local files (file:// URLs or paths) from inside DIR only; none by default",
    )


def _add_queue_options(server: Any) -> None:
    """--max-batch-size, --max-wait-ms, --max-queue, --request-timeout, --media-workers."""
    server.add_argument(
        "--max-batch-size",
        type=int,
        default=8,
        metavar="N",
        help="requests generated together at most (8)",
    )
    server.add_argument(
        "--max-wait-ms",
        type=float,
        default=10.0,
        metavar="MS",
        help="how long a batch waits for more requests (10 ms)",
    )
    server.add_argument(
        "--max-queue",
        type=int,
        default=64,
        metavar="N",
        help="requests in the server at once; more get 503 with Retry-After (64)",
    )
    server.add_argument(
        "--request-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="a request still unanswered after this gets 504 and stops (600)",
    )
    server.add_argument(
        "--media-workers",
        type=int,
        default=4,
        metavar="N",
        help="threads fetching, decoding and sampling media (4)",
    )


def _add_request_limits(server: Any) -> None:
    """--max-body-mb, --max-videos, --max-images, --max-frames, --max-uploads-mb."""
    server.add_argument(
        "--max-body-mb",
        type=float,
        default=64.0,
        metavar="MB",
        help="largest request body, data: URLs included; larger gets 413 (64)",
    )
    server.add_argument(
        "--max-videos", type=int, default=8, metavar="N", help="videos per request (8)"
    )
    server.add_argument(
        "--max-images", type=int, default=16, metavar="N", help="images per request (16)"
    )
    server.add_argument(
        "--max-frames",
        type=int,
        default=256,
        metavar="N",
        help="video frames per request, all its videos together (256)",
    )
    server.add_argument(
        "--max-uploads-mb",
        type=float,
        default=1024.0,
        metavar="MB",
        help="all the videos uploaded with POST /v1/uploads together, kept an hour after "
        "their last use; 0 turns uploads off (1024)",
    )


def _add_watch_options(server: Any) -> None:
    """--max-watches, --library."""
    server.add_argument(
        "--library",
        metavar="NAME|PATH",
        help="a video library (vidtt index) searched with POST /v1/library/search; none by default",
    )
    server.add_argument(
        "--max-watches",
        type=int,
        default=4,
        metavar="N",
        help="watches of live sources (POST /v1/watches) running at once; 0 turns them off (4)",
    )


def _add_log_options(server: Any) -> None:
    """--log-level and --no-access-log."""
    server.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn's log level (info)",
    )
    server.add_argument("--no-access-log", action="store_true", help="no line per request")
    server.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines as text (default) or one JSON object each",
    )
    server.add_argument(
        "--no-ui", dest="ui", action="store_false", help="no page at / (the API only)"
    )


def settings_from_args(args: argparse.Namespace, model: str) -> Any:
    from vidtt.serve.protocol import ServeLimits
    from vidtt.serve.server import ServeSettings

    positive = {
        "--max-batch-size": args.max_batch_size,
        "--max-queue": args.max_queue,
        "--media-workers": args.media_workers,
        "--max-frames": args.max_frames,
        "--request-timeout": args.request_timeout,
        "--max-body-mb": args.max_body_mb,
    }
    for flag, value in positive.items():
        if value <= 0:
            raise OptionsError(f"{flag} must be above 0, not {value:g}")
    for flag, value in {
        "--max-videos": args.max_videos,
        "--max-images": args.max_images,
        "--max-wait-ms": args.max_wait_ms,
        "--max-watches": args.max_watches,
        "--max-uploads-mb": args.max_uploads_mb,
    }.items():
        if value < 0:
            raise OptionsError(f"{flag} must be 0 or more, not {value:g}")
    if not 0 < args.port < 65536:
        raise OptionsError(f"--port must be between 1 and 65535, not {args.port}")
    allowed = None
    if args.allowed_local_media_path:
        folder = Path(args.allowed_local_media_path).expanduser()
        if not folder.is_dir():
            raise OptionsError(f"--allowed-local-media-path {folder}: no such folder")
        allowed = Path(os.path.realpath(folder))
    key = args.api_key if args.api_key is not None else envs.get(API_KEY_VARIABLE)
    return ServeSettings(
        served_model_name=args.served_model_name or model,
        api_key=key or None,
        max_batch_size=args.max_batch_size,
        max_wait=args.max_wait_ms / 1000,
        max_queue=args.max_queue,
        request_timeout=args.request_timeout,
        workers=args.media_workers,
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        timestamps=args.timestamps,
        max_watches=args.max_watches,
        max_upload_bytes=int(args.max_uploads_mb * (1 << 20)),
        ui=args.ui,
        log_format=args.log_format,
        library=open_library(args.library),
        limits=ServeLimits(
            max_videos=args.max_videos,
            max_images=args.max_images,
            max_frames=args.max_frames,
            allowed_local_media_path=allowed,
        ),
    )


def open_library(name: str | None) -> Any:
    """The library `--library` names, opened once (a `LibraryError` when missing), or None."""
    if not name:
        return None
    from vidtt.library import Library

    return Library.open(name, create=False)


def check_extra() -> None:
    """Refuse to start, in one line, when a package of the `serve` extra is missing."""
    missing = []
    for name in SERVE_EXTRA:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingExtraError(
            f"vidtt serve needs the serve extra ({', '.join(missing)} not installed): "
            "pip install 'vidtt[serve]'"
        )


def cmd_serve(args: argparse.Namespace) -> int:
    if args.log_format == "json":
        return serve_json_logged(args)
    return run_server(args, lambda line: print(f"vidtt: {line}", file=sys.stderr, flush=True))


def serve_json_logged(args: argparse.Namespace) -> int:
    """`vidtt serve --log-format json`: every line on stderr a JSON object, from the start (the
    model loading) to the end (an error, or the signal that stopped the server)."""
    from vidtt.serve.logs import use_json_logs  # (the standard library only)

    use_json_logs(args.log_level, not args.no_access_log)
    log = logging.getLogger("vidtt.serve")
    try:
        return run_server(args, log.info)
    except KeyboardInterrupt as stop:
        return exit_interrupted(isinstance(stop, Terminated), say=log.warning)
    except (VidttError, OSError) as exc:
        if args.debug:
            raise
        log.error("error: %s", redact(str(exc)))
        return 2


def format_host(host: str) -> str:
    """`host` as a URL holds it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def run_server(args: argparse.Namespace, say: Callable[[str], Any]) -> int:
    """Load the model and serve it until stopped; `say` tells where it serves."""
    check_extra()
    resolved = command_settings(args)
    settings = settings_from_args(args, resolved.config.model)
    pipeline = build_pipeline(*with_frame_rule(resolved))

    from vidtt.serve.app import serve

    root = f"http://{format_host(args.host)}:{args.port}"
    say(
        f"serving {settings.served_model_name} at {root}/v1 "
        f"({pipeline.engine.backend}, {pipeline.engine.dtype})"
        + ("; API key required" if settings.api_key else "")
        + (f"; the page at {root}/" if settings.ui else "")
    )
    try:
        serve(
            pipeline,
            settings,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=not args.no_access_log,
        )
    finally:
        cancel()  # a generation still running (past the shutdown timeout) stops
    return 0
