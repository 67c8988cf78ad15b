"""`vidtt serve` is split by endpoint, as vLLM's entrypoints are: each route family adds its
own routes, `vidtt.serve.app` only assembles them, the HTTP surface is the one documented, and
no import circle runs through the serve modules (counting imports for type checking and
inside functions)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("fastapi")
grimp = pytest.importorskip("grimp")

# (methods, path, status code) -> the module that adds the route
ROUTES = {
    (("POST",), "/v1/chat/completions", None): "vidtt.serve.chat",
    (("GET",), "/v1/models", None): "vidtt.serve.operator",
    (("GET",), "/v1/models/{name:path}", None): "vidtt.serve.operator",
    (("GET",), "/health", None): "vidtt.serve.operator",
    (("GET",), "/ready", None): "vidtt.serve.operator",
    (("GET",), "/metrics", None): "vidtt.serve.operator",
    (("POST",), "/v1/watches", 201): "vidtt.serve.watches",
    (("GET",), "/v1/watches", None): "vidtt.serve.watches",
    (("GET",), "/v1/watches/{watch_id}", None): "vidtt.serve.watches",
    (("DELETE",), "/v1/watches/{watch_id}", None): "vidtt.serve.watches",
    (("GET",), "/v1/watches/{watch_id}/events", None): "vidtt.serve.watches",
    (("POST",), "/v1/frames", None): "vidtt.serve.frames",
    (("POST",), "/v1/uploads", 201): "vidtt.serve.uploads",
    (("GET",), "/v1/uploads/{upload_id}", None): "vidtt.serve.uploads",
    (("DELETE",), "/v1/uploads/{upload_id}", None): "vidtt.serve.uploads",
    (("GET",), "/v1/library", None): "vidtt.serve.library",
    (("POST",), "/v1/library/search", None): "vidtt.serve.library",
    (("POST",), "/v1/library/ask", None): "vidtt.serve.library",
    (("GET",), "/v1/library/thumbnails/{video_id}/{name}", None): "vidtt.serve.library",
    (("GET", "HEAD"), "/v1/library/videos/{video_id}", None): "vidtt.serve.library",
    (("GET",), "/v1/ui/config", None): "vidtt.serve.ui",
    (("GET", "HEAD"), "/", None): "vidtt.serve.ui",
    (("GET", "HEAD"), "/ui/{name}", None): "vidtt.serve.ui",
}


def routes_of(ui: bool) -> dict[tuple[Any, ...], str]:
    from vidtt.serve.app import ServeSettings, create_app

    stand_in = SimpleNamespace(config=SimpleNamespace(model="m"), engine=None)  # never started
    app = create_app(stand_in, ServeSettings(ui=ui))  # type: ignore[arg-type]
    return {
        (tuple(sorted(r.methods)), r.path, r.status_code): r.endpoint.__module__
        for r in app.routes
        if getattr(r, "status_code", "starlette") != "starlette"  # (FastAPI's own routes)
    }


def test_each_route_family_adds_its_own_routes() -> None:
    assert routes_of(ui=True) == ROUTES


def test_without_the_page_only_its_files_go() -> None:
    gone = {key for key in ROUTES if key[1] in ("/", "/ui/{name}")}
    assert routes_of(ui=False) == {k: v for k, v in ROUTES.items() if k not in gone}


def circles(package: str) -> list[set[str]]:
    """The sets of modules of `package` that import each other (strongly connected)."""
    graph = grimp.build_graph("vidtt")
    modules = {m for m in graph.modules if m == package or m.startswith(package + ".")}
    found = []
    for module in sorted(modules):
        reach = graph.find_downstream_modules(module) & modules
        back = {m for m in reach if module in graph.find_downstream_modules(m)}
        if back and not any(module in c for c in found):
            found.append({module, *back})
    return found


def test_no_import_circle_among_the_serve_modules() -> None:
    assert circles("vidtt.serve") == []
