"""Files visited and layer climbs on four request paths (issue 34).

    python benchmarks/request_path.py [--json] [--layers PYPROJECT] [--no-warmup]

Runs in-process, with a tiny random llava-interleave-shaped model built offline
(`vidtt.testing.models.make_tiny_llava`, as tests/tiny_models.py `make_llava`) and small
videos (`vidtt.testing.make_video`):

  ask      `vidtt ask VIDEO -q ...` (`vidtt.cli.main`): cpu, float32, --max-new-tokens 3;
  long     the same with `--long --segment-option min_segment=2 --segment-option shots=false`
           on an 8 s video;
  chat     one `POST /v1/chat/completions` (a local video, 4 frames, 3 tokens) to the app that
           `vidtt serve` runs, on 127.0.0.1, sent with httpx; start-up is not traced;
  watch    `Pipeline.watch` of an MPEG-TS file played at its own speed (every 1 s, a 1 s
           window, 4 frames, 3 tokens): from the `watch(...)` call to its first answer.

A profiler (`sys.setprofile`, and `threading.setprofile` for the threads started after it: the
server's, the reader's, the pools') records every call of a function whose code lies in the
vidtt package (core/ and the plugin folders; modules named vidtt.X): the distinct files, and
the layer climbs: a call from a module of a lower layer into one of a higher layer, the layers
being the `layers` contract of `[tool.importlinter]` in the pyproject.toml beside the package
measured (or `--layers`); a module is in the layer of its longest listed prefix, and modules in
no layer (plugins, `vidtt.plugin_api`, `vidtt.testing`...) count as files but never climb. The
caller of a call is the nearest vidtt frame under it on the stack (so callbacks made through
the standard library, pydantic or torch count); resuming a generator counts as a call.

Not traced: building the model and videos; loading the model (`vidtt.engine.loading.load`
and `load_processor` are wrapped to load once, before tracing; the calls to the wrappers
themselves are on the path, what they do is not); module bodies (imports); and, unless
`--no-warmup`, a first untraced run of each scenario on another video (so imports, plugin
discovery and first-use caches are not counted: the numbers are a warm process's).
Works on any checkout whose `vidtt` is importable: point PYTHONPATH or a venv at it.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

PACKAGES = ("vidtt", "vidtt.samplers", "vidtt.formatters", "vidtt.backends", "vidtt.transcribers")
QUESTION = "What is happening in this video?"
SCENARIOS = ("ask", "long", "chat", "watch")
SERVE_MODULES = (".app", ".server", ".protocol", "")
Record = Callable[[], contextlib.AbstractContextManager[Any]]
Once = Callable[[Path, Record], None]


class Package:
    """Which vidtt module a code file is (None: not vidtt's)."""

    def __init__(self) -> None:
        roots: dict[str, str] = {}
        for name in PACKAGES:
            with contextlib.suppress(ImportError):
                module = importlib.import_module(name)
                roots[os.path.realpath(os.path.dirname(module.__file__ or ""))] = name
        self.roots = sorted(roots.items(), key=lambda root: -len(root[0]))
        self.top = os.path.dirname(next(r for r, name in self.roots if name == "vidtt"))
        self.cache: dict[str, str | None] = {}

    def module_of(self, filename: str) -> str | None:
        try:
            return self.cache[filename]
        except KeyError:
            pass
        path, found = os.path.realpath(filename), None
        for root, name in self.roots:
            if path.startswith(root + os.sep) and path.endswith(".py"):
                parts = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
                parts = parts[:-1] if parts[-1] == "__init__" else parts
                found = ".".join([name, *parts])
                break
        self.cache[filename] = found
        return found

    def relative(self, filename: str) -> str:
        return os.path.relpath(os.path.realpath(filename), self.top)


class Layers:
    """The `layers` contract of a pyproject.toml: 0 is the top layer."""

    def __init__(self, pyproject: Path) -> None:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            import tomli as tomllib  # type: ignore[no-redef]

        data = tomllib.loads(pyproject.read_text())
        contracts = data["tool"]["importlinter"]["contracts"]
        layers = next(c["layers"] for c in contracts if c.get("type") == "layers")
        self.source, self.count = pyproject, len(layers)
        self.prefixes = {
            name.strip(): index for index, line in enumerate(layers) for name in line.split("|")
        }
        self.cache: dict[str, int | None] = {}

    def of(self, module: str) -> int | None:
        if module not in self.cache:
            held = [p for p in self.prefixes if module == p or module.startswith(p + ".")]
            self.cache[module] = self.prefixes[max(held, key=len)] if held else None
        return self.cache[module]

    def climbs(self, caller: str, callee: str) -> bool:
        low, high = self.of(caller), self.of(callee)
        return low is not None and high is not None and low > high


@dataclass
class Trace:
    """What one traced run called."""

    files: set[str] = field(default_factory=set)
    functions: set[tuple[str, str]] = field(default_factory=set)
    calls: int = 0
    climbs: Counter[tuple[str, str]] = field(default_factory=Counter)
    loads: int = 0  # models loaded while tracing (0: loading stayed out of the trace)
    error: str = ""  # why the scenario failed (then the rest is empty)


class Tracer:
    """A profile hook on every thread, recording vidtt's calls while `recording`."""

    def __init__(self, package: Package, layers: Layers) -> None:
        self.package, self.layers = package, layers
        self.on, self.trace, self.lock = False, Trace(), threading.Lock()

    def install(self) -> None:
        threading.setprofile(self.hook)
        sys.setprofile(self.hook)

    def uninstall(self) -> None:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False

    def take(self) -> Trace:
        trace, self.trace = self.trace, Trace()
        return trace

    def hook(self, frame: FrameType, event: str, arg: Any) -> None:
        if not self.on or event != "call":
            return
        code = frame.f_code
        module = self.package.module_of(code.co_filename)
        if module is None or code.co_name == "<module>":
            return
        caller = self.caller_of(frame.f_back)
        name = getattr(code, "co_qualname", code.co_name)
        with self.lock:
            trace = self.trace
            trace.calls += 1
            trace.files.add(code.co_filename)
            trace.functions.add((module, name))
            if caller is not None and self.layers.climbs(caller, module):
                trace.climbs[(caller, module)] += 1

    def caller_of(self, frame: FrameType | None) -> str | None:
        while frame is not None:
            module = self.package.module_of(frame.f_code.co_filename)
            if module is not None:
                return module
            frame = frame.f_back
        return None


def load_once(tracer: Tracer) -> list[str]:
    """Wrap the model and processor loaders so each loads once (the tiny model is the only
    one): the names wrapped."""
    try:
        loading = importlib.import_module("vidtt.engine.loading")
    except ImportError:  # moved: loading is then traced (the rows say so)
        return []
    wrapped = []
    for name in ("load", "load_processor"):
        real = getattr(loading, name, None)
        if callable(real):
            setattr(loading, name, cached(real, tracer))
            wrapped.append(f"vidtt.engine.loading.{name}")
    return wrapped


def cached(real: Callable[..., Any], tracer: Tracer) -> Callable[..., Any]:
    """`real`, called once; each call after gets a copy of its models (`vidtt ask` wraps its
    model's `generate`: that must not reach the server's or the watch's)."""
    kept: list[Any] = []

    def load(*args: Any, **kwargs: Any) -> Any:
        if not kept:
            tracer.trace.loads += tracer.on
            kept.append(real(*args, **kwargs))
        return copied(kept[0])

    return load


def copied(value: Any) -> Any:
    """`value` with each torch module in it (alone or in a tuple) copied."""
    import torch

    if isinstance(value, tuple):
        return tuple(copied(item) for item in value)
    return copy.deepcopy(value) if isinstance(value, torch.nn.Module) else value


@dataclass
class Setup:
    model: Path
    media: Path
    videos: dict[str, Path]


def make_setup(folder: Path) -> Setup:
    """The tiny model and the videos: each scenario's, and another for its warm-up."""
    from vidtt.testing import make_video

    try:
        from vidtt.testing.models import make_tiny_llava
    except ImportError:  # the tests' own name for it
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
        from tiny_models import make_llava as make_tiny_llava

    model = make_tiny_llava(folder / "llava", context=4096)
    media = folder / "media"
    media.mkdir()
    videos = {}
    for warm in (0, 1):  # a warm-up's video differs (frame and note caches must miss)
        tail = "-warm" if warm else ""
        videos["ask" + tail] = make_video(media / f"ask{tail}.mp4", frames=48 + warm)
        videos["long" + tail] = make_video(media / f"long{tail}.mp4", frames=80 + warm, fps=10)
        videos["chat" + tail] = make_video(media / f"chat{tail}.mp4", frames=48 + warm)
        videos["watch" + tail] = make_video(
            media / f"watch{tail}.ts", frames=60 + warm, fps=10, codec="libx264", bframes=0
        )
    return Setup(model, media, videos)


def tiny_pipeline(setup: Setup) -> Any:
    import vidtt

    return vidtt.Pipeline(
        model=str(setup.model),
        backend="cpu",
        dtype="float32",
        sampler_options={"num_frames": 4},
        generation={"max_new_tokens": 3},
    )


@contextlib.contextmanager
def cli_scenario(setup: Setup, extra: list[str]) -> Iterator[Once]:
    """`vidtt ask VIDEO ...` in-process, its output kept (and shown if it fails)."""
    from vidtt.cli import main

    def once(video: Path, record: Record) -> None:
        argv = ["ask", str(video), "-q", QUESTION, "--model", str(setup.model)]
        argv += ["--backend", "cpu", "--dtype", "float32", "--max-new-tokens", "3", *extra]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), record():
            code = main(argv)
        if code != 0 or not out.getvalue().strip():
            raise RuntimeError(f"vidtt {' '.join(argv)}: {code}\n{out.getvalue()}{err.getvalue()}")

    yield once


def ask_scenario(setup: Setup) -> contextlib.AbstractContextManager[Once]:
    return cli_scenario(setup, [])


def long_scenario(setup: Setup) -> contextlib.AbstractContextManager[Once]:
    options = ["--segment-option", "min_segment=2", "--segment-option", "shots=false"]
    return cli_scenario(setup, ["--long", *options])


def serve_names() -> tuple[Any, Any, Any, Any]:
    """create_app, uvicorn_server, ServeSettings, ServeLimits, wherever this checkout has them."""
    found = []
    for name in ("create_app", "uvicorn_server", "ServeSettings", "ServeLimits"):
        homes = (importlib.import_module(f"vidtt.serve{where}") for where in SERVE_MODULES)
        value = next((getattr(m, name) for m in homes if hasattr(m, name)), None)
        if value is None:
            raise RuntimeError(f"no {name} in vidtt.serve.app, .server, .protocol nor vidtt.serve")
        found.append(value)
    return found[0], found[1], found[2], found[3]


@contextlib.contextmanager
def chat_scenario(setup: Setup) -> Iterator[Once]:
    """The app `vidtt serve` runs, on a free port of 127.0.0.1, local media allowed."""
    import httpx
    import uvicorn

    create_app, uvicorn_server, settings, limits = serve_names()
    allowed = limits(allowed_local_media_path=setup.media.resolve())
    app = create_app(tiny_pipeline(setup), settings(limits=allowed))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    server = uvicorn_server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base)

    def once(video: Path, record: Record) -> None:
        content = [{"type": "video", "video": video.name}, {"type": "text", "text": QUESTION}]
        body = {"messages": [{"role": "user", "content": content}], "max_tokens": 3}
        with record():
            response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=120)
        if response.status_code != 200:
            raise RuntimeError(f"chat completion: {response.status_code} {response.text}")

    try:
        yield once
    finally:
        server.should_exit = True
        thread.join(30)


def wait_healthy(base: str, seconds: float = 60) -> None:
    import httpx

    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"the server at {base} did not come up in {seconds:.0f} s")


@contextlib.contextmanager
def watch_scenario(setup: Setup) -> Iterator[Once]:
    """`Pipeline.watch` of a file played at its own speed, up to its first answer."""
    pipe = tiny_pipeline(setup)

    def once(video: Path, record: Record) -> None:
        settings = {"every": 1, "window": 1, "max_events": 1, "max_new_tokens": 3}
        events: Iterator[Any] | None = None
        try:
            with record():
                events = iter(pipe.watch(str(video), QUESTION, **settings))
                kinds = []
                for event in events:
                    kinds.append(event.kind)
                    if event.kind == "answer":
                        break
            if "answer" not in kinds:
                raise RuntimeError(f"the watch of {video} ended with no answer: {kinds}")
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()  # stops the reader

    yield once


FACTORIES: dict[str, Callable[[Setup], contextlib.AbstractContextManager[Once]]] = {
    "ask": ask_scenario,
    "long": long_scenario,
    "chat": chat_scenario,
    "watch": watch_scenario,
}


def run_all(setup: Setup, tracer: Tracer, names: list[str], warmup: bool) -> dict[str, Trace]:
    traces = {}
    tiny_pipeline(setup)  # the model loads here, before any trace (then reused)
    tracer.install()
    try:
        for name in names:
            try:
                with FACTORIES[name](setup) as once:
                    if warmup:
                        once(setup.videos[name + "-warm"], contextlib.nullcontext)
                    tracer.take()
                    once(setup.videos[name], tracer.recording)
                    traces[name] = tracer.take()
            except Exception as exc:  # the others still run; the row says why
                traceback.print_exc()
                last = (str(exc).strip().splitlines() or [""])[-1]
                traces[name] = Trace(error=f"{type(exc).__name__}: {last}")
    finally:
        tracer.uninstall()
    return traces


def checkout(package: Package) -> str:
    """The commit of the checkout measured, and whether its tracked files differ from it."""
    git = ["git", "-C", package.top]
    try:
        commit = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return f"{commit} with uncommitted changes" if changed else commit


def summary(name: str, trace: Trace, package: Package) -> dict[str, Any]:
    return {
        "scenario": name,
        "files": sorted(package.relative(f) for f in trace.files),
        "functions": len(trace.functions),
        "calls": trace.calls,
        "climbing_pairs": [
            {"caller": caller, "callee": callee, "calls": calls}
            for (caller, callee), calls in sorted(trace.climbs.items())
        ],
        "climbing_calls": sum(trace.climbs.values()),
        "model_loads_traced": trace.loads,
        "error": trace.error,
    }


def print_table(rows: list[dict[str, Any]], header: dict[str, Any]) -> None:
    for key, value in header.items():
        print(f"{key}: {value}")
    print()
    print("| scenario | files visited | functions | distinct climbing pairs | climbing calls |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        cells = [row["scenario"], len(row["files"]), row["functions"]]
        cells += [len(row["climbing_pairs"]), row["climbing_calls"]]
        cells = cells[:1] + ["failed"] * 4 if row["error"] else cells
        print("| " + " | ".join(str(c) for c in cells) + " |")
    for row in rows:
        if row["error"]:
            print(f"\n{row['scenario']} failed: {row['error']}")
            continue
        pairs = ", ".join(
            f"{p['caller']} -> {p['callee']} ({p['calls']})" for p in row["climbing_pairs"]
        )
        print(f"\n{row['scenario']} climbs: {pairs or 'none'}")
        if row["model_loads_traced"]:
            print(f"{row['scenario']}: the model loaded inside the trace")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the raw lists as JSON")
    parser.add_argument("--layers", type=Path, help="the pyproject.toml whose layers to use")
    parser.add_argument("--no-warmup", action="store_true", help="trace each scenario's 1st run")
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vidtt-request-path-") as folder:
        os.environ["VIDTT_CACHE_DIR"] = str(Path(folder) / "cache")  # notes of this run only
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        package = Package()
        layers = Layers(args.layers or Path(package.top) / "pyproject.toml")
        tracer = Tracer(package, layers)
        wrapped = load_once(tracer)
        setup = make_setup(Path(folder))
        traces = run_all(setup, tracer, args.only, warmup=not args.no_warmup)
    rows = [summary(name, trace, package) for name, trace in traces.items()]
    header = {
        "vidtt measured": f"{package.top} ({checkout(package)})",
        "layers from": f"{layers.source} ({layers.count} layers)",
        "not traced": ", ".join([*wrapped, "module bodies"])
        + ("" if args.no_warmup else ", a warm-up run of each scenario"),
        "reproduce": " ".join(["python", "benchmarks/request_path.py", *sys.argv[1:]]),
    }
    if args.json:
        print(json.dumps({**header, "scenarios": rows}, indent=2))
    else:
        print_table(rows, header)
    return 1 if any(row["error"] for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
