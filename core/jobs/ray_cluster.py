"""The Ray cluster of a `vidtt run --ray`: importing Ray, connecting (a private local cluster,
the one on this machine, or one at an address), the variables sent to the workers, and the
one-line errors a failure on a worker becomes.

Ray is imported only inside the functions here, so importing this module stays light.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from vidtt import envs
from vidtt.errors import ConfigError, OptionsError, VidttError

FORWARDED_ENV = (  # besides vidtt's own (`vidtt.envs.forwarded`)
    "HF_HUB_OFFLINE",
    "HF_HUB_DISABLE_PROGRESS_BARS",
    "TRANSFORMERS_VERBOSITY",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS",
)
NO_RAY = "--ray needs Ray, which is not installed here: pip install 'vidtt[ray]'"


def forwarded_env() -> dict[str, str]:
    """The driver's variables that change what the workers do (never credentials)."""
    own = {name: os.environ[name] for name in FORWARDED_ENV if name in os.environ}
    return {**own, **envs.forwarded()}


def import_ray() -> Any:
    """The `ray` module, with Ray Data; a one-line ConfigError when Ray is not installed."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigError(NO_RAY) from None
    return ray


def ray_connected() -> bool:
    """Whether this process is already connected to Ray (without importing it)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


@contextmanager
def cluster(address: str, num_cpus: int | None, progress: bool = True) -> Iterator[Any]:
    """Ray, connected: a private local cluster ("local"), the one on this machine ("auto"), the
    one at `address`, or the connection this process already has. Without `progress`, Ray is
    quiet too: no warnings, no log lines of its own nor of the workers, only errors raised.
    A private cluster ends with this process, however it ends (`ray_reaper`)."""
    ray = import_ray()
    import logging

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = progress
    if not progress:  # nor Ray Data's log lines about its progress
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if ray.is_initialized():
        yield ray
        return
    common: dict[str, Any] = {
        "logging_level": "WARNING" if progress else "ERROR",
        "log_to_driver": progress,
        "runtime_env": {"env_vars": forwarded_env()},
    }
    reaper = None
    with quiet_native_logs(not progress):
        if address == "local":
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, **common)
            reaper = start_reaper(ray)
        else:
            if num_cpus is not None:
                raise OptionsError("num_cpus applies only to a local cluster (address='local')")
            check_reachable(address)
            try:
                ray.init(address=address, **common)
            except Exception as exc:
                ray.shutdown()
                raise ConfigError(connect_error(address, exc)) from None
    try:
        yield ray
    finally:
        ray.shutdown()
        if reaper is not None:
            os.close(reaper)  # the reaper ends what shutting down left


@contextmanager
def quiet_native_logs(quiet: bool) -> Iterator[None]:
    """While `quiet` (around `ray.init`): the Ray processes started inside, this driver's core
    worker included, log only fatal lines of their C++ code (to stderr and to their log files;
    Ray Data's actor pools otherwise print an error-level note per pool), unless the user set
    `RAY_BACKEND_LOG_LEVEL`; the line that says so at their start is not shown either (the
    driver's standard error goes to /dev/null inside; Ray raises what fails). Afterwards the
    variable and standard error are as they were."""
    name = "RAY_BACKEND_LOG_LEVEL"
    if not quiet or name in os.environ:
        yield
        return
    os.environ[name] = "fatal"
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        os.environ.pop(name, None)


def start_reaper(ray: Any) -> int | None:
    """Start `ray_reaper` for the private cluster just started; the write end of the pipe it
    watches (held by this process only, closed by its exit however it ends), or None where the
    reaper cannot run (not Linux, or Ray's processes cannot be listed)."""
    import subprocess
    from pathlib import Path

    from vidtt.jobs.ray_reaper import start_time

    if not sys.platform.startswith("linux"):
        return None
    try:
        node = ray._private.worker._global_node
        pids = [info.process.pid for infos in node.all_processes.values() for info in infos]
    except Exception:  # another Ray's internals: leave it to Ray
        return None
    named = [f"{pid}:{start}" for pid in pids if (start := start_time(pid)) is not None]
    if not named:
        return None
    script = Path(__file__).with_name("ray_reaper.py")
    read, write = os.pipe()  # neither end is inherited by processes started later
    try:
        subprocess.Popen(
            [sys.executable, "-I", str(script), *named],
            stdin=read,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        os.close(write)
        return None
    finally:
        os.close(read)
    return write


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse at once an address where nothing listens (Ray itself waits minutes)."""
    import socket
    import urllib.parse

    if address == "auto":
        return
    parts = urllib.parse.urlsplit(address if "://" in address else f"ray-gcs://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host:
        raise ConfigError(
            f"--ray {address}: expected local, auto, HOST:PORT (the head's GCS, port 6379 by "
            "default) or ray://HOST:PORT"
        )
    port = port or (10001 if parts.scheme == "ray" else 6379)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"--ray {address}: cannot connect to a Ray cluster at {host}:{port}: "
            f"{exc.strerror or exc or 'timed out'}"
        ) from None


def connect_error(address: str, exc: Exception) -> str:
    """The one line that says why connecting to `address` failed."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if address == "auto":
        return (
            "--ray auto: no running Ray cluster found on this machine (start one with "
            f"`ray start --head`, or use --ray local): {first}"
        )
    return f"--ray {address}: cannot connect to the Ray cluster there: {first}"


# -- errors from the workers ----------------------------------------------------------------------
def run_ray(action: Any) -> Any:
    """Run `action`; a failure inside Ray that comes from vidtt is raised as that error, in one
    line (a model that cannot load on a worker, say)."""
    try:
        return action()
    except VidttError as exc:  # Ray's wrappers subclass the original error
        raise ConfigError(f"on a Ray worker: {root_message(exc)}") from None
    except Exception as exc:
        cause = vidtt_cause(exc)
        if cause is not None:
            raise ConfigError(f"on a Ray worker: {root_message(cause)}") from None
        found = vidtt_message(exc)
        if found is None:
            raise
        raise ConfigError(f"on a Ray worker: {found}") from None


def vidtt_message(exc: BaseException) -> str | None:
    """The last `vidtt.errors.SomeError: message` line in the text of an error and its causes
    (Ray keeps only the text of an error raised while an actor starts)."""
    import re

    found = None
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for match in re.finditer(r"vidtt\.errors\.\w+: (.+)", str(current)):
            found = match.group(1).strip()
        current = current.__cause__ or current.__context__
    return found


def vidtt_cause(exc: BaseException) -> BaseException | None:
    """The first vidtt error among an error and its causes (Ray's `cause` included)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, VidttError):
            return current
        current = getattr(current, "cause", None) or current.__cause__ or current.__context__
    return None


def root_message(exc: BaseException) -> str:
    """The vidtt message of an error, without the traceback Ray adds to it."""
    inner = getattr(exc, "cause", None)
    if isinstance(inner, VidttError):
        exc = inner
    args = getattr(exc, "args", ())
    text = str(args[0]) if args and isinstance(args[0], str) else str(exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
