"""Running `vidtt` commands in tests: `console` starts the installed console script in a
subprocess; `in_process` calls `vidtt.cli.main` in this process, as that process would see it
(its own stdin, stdout and stderr, environment and working folder), and puts back afterwards
everything a run changes in the process.

Use `console` for what only a real process shows: exit statuses from signals, Ctrl-C, a real
pipe or terminal on stdin, the console script's wiring, settings read once when a process starts
(here `VIDTT_LIMIT_*`, transformers' verbosity and progress bars are set up afresh for each run;
other variables libraries read at import, such as HF_HUB_OFFLINE, are not), Ray clusters. Use
`in_process` for the other variations of a command, at a fraction of the cost (no interpreter
start, no torch import).

What `in_process` does not see: log records of libraries whose handlers were made before the
call (transformers', huggingface_hub's) go where they went before, not to its stderr; so a check
that a command's stderr has no library noise needs `console`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VIDTT = str(Path(sys.executable).with_name("vidtt"))
ENV = {"VIDTT_BACKEND": "cpu"}
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def console(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """`vidtt ARGS...` through the installed console script, stdin given (else empty), on the
    CPU backend, with `env` laid over this process's environment."""
    return subprocess.run(
        [VIDTT, *args],
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env={**os.environ, **ENV, **(env or {})},
    )


def in_process(
    *args: str,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """`console`'s twin: `vidtt.cli.main(list(args))` here, on the main thread, its streams
    text buffers; `SystemExit` and an uncaught exception become the exit status (and the
    traceback on stderr) as in a process."""
    _settle_libraries()
    from vidtt.cli import main

    out, err = io.StringIO(), io.StringIO()
    with _isolated(env, cwd, out, err):
        sys.stdin = io.StringIO(stdin or "")
        sys.stdout, sys.stderr = out, err
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = _exit_status(stop.code, err)
        except KeyboardInterrupt:
            raise  # main turns Ctrl-C into 130; one that escapes it is the test run's own
        except BaseException:  # the interpreter prints it and exits 1
            err.write(traceback.format_exc())
            code = 1
        finally:
            with contextlib.suppress(Exception):
                out.flush()
    return subprocess.CompletedProcess([VIDTT, *args], code, out.getvalue(), err.getvalue())


# (system call, its first argument) of a wait for input on fd 0: read(0, ...), and select or
# pselect6 on fds below 1, as CPython's readline does; /proc/PID/syscall shows the call a
# blocked thread is in
WAITS_FOR_INPUT = {
    "x86_64": {("0", "0x0"), ("23", "0x1"), ("270", "0x1")},
    "aarch64": {("63", "0x0"), ("72", "0x1")},
}


def wait_for_input(
    process: subprocess.Popen[Any], otherwise: float = 0, seconds: float = 120
) -> None:
    """Until `process`'s main thread is blocked reading its stdin (at a prompt, or a piped
    chat's next line). A signal sent a moment before that wait begins is only seen after the
    next input: CPython checks for signals when a blocking call is interrupted, and one that
    came first interrupts nothing. Where /proc cannot tell, wait `otherwise` seconds."""
    calls = WAITS_FOR_INPUT.get(platform.machine())
    called = Path(f"/proc/{process.pid}/syscall")
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        assert process.poll() is None, f"exited with {process.returncode}"
        try:
            fields = tuple(called.read_text().split()[:2])
        except OSError:
            fields = ()
        if calls is None or not fields:
            time.sleep(otherwise)
            return
        if fields in calls:
            return
        time.sleep(0.02)
    raise AssertionError(f"no wait for input within {seconds:g} s")


def _exit_status(code: Any, err: io.StringIO) -> int:
    """The status `raise SystemExit(code)` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=err)
    return 1


def _settle_libraries() -> None:
    """Import what reads the environment or makes its log handlers once, at its import
    (transformers, which brings huggingface_hub), before a run changes either: imported
    inside a run they would keep its settings and write to its buffers for good."""
    if importlib.util.find_spec("transformers") is not None:
        import transformers.utils.logging  # noqa: F401


@contextlib.contextmanager
def _isolated(
    env: dict[str, str] | None, cwd: str | Path | None, out: io.StringIO, err: io.StringIO
) -> Iterator[None]:
    """The process-wide state a run reads or leaves, set for it and put back after (even when
    it fails): environment, working folder, streams, signal handlers, warnings, logging,
    the interrupt flag, the limits read from the environment, torch's random state."""
    from vidtt import limits
    from vidtt.cli import interrupt

    environ, folder = dict(os.environ), os.getcwd()
    streams = sys.stdin, sys.stdout, sys.stderr
    handlers = {number: signal.getsignal(number) for number in SIGNALS}
    logs = _logging_state()
    process_limits = limits._process_default
    torch_state = _torch_state()
    try:
        os.environ.update({**ENV, **(env or {})})
        limits._process_default = None  # read from the environment, as a process starts
        if cwd is not None:
            os.chdir(cwd)
        with warnings.catch_warnings(), _libraries_as_started(os.environ):
            _interpreter_warnings()  # `catch_warnings` puts back the filters, `showwarning`
            yield
    finally:
        sys.stdin, sys.stdout, sys.stderr = streams
        for number, handler in handlers.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        _restore_logging(logs, {id(out), id(err)})
        interrupt.cancelled.clear()
        limits._process_default = process_limits
        _restore_torch(torch_state)
        os.chdir(folder)
        os.environ.clear()
        os.environ.update(environ)


@contextlib.contextmanager
def _libraries_as_started(environ: Any) -> Iterator[None]:
    """transformers' verbosity and progress bars (huggingface_hub's too) as a new `vidtt`
    process has them: there they are read from the environment at import, after `vidtt` set
    TRANSFORMERS_VERBOSITY=error and HF_HUB_DISABLE_PROGRESS_BARS=1 unless given; put back
    after."""
    hf = sys.modules.get("transformers.utils.logging")
    hub = sys.modules.get("huggingface_hub.utils.tqdm")
    if hf is None or hub is None:
        yield
        return
    verbosity, bars = hf.get_verbosity(), hf.is_progress_bar_enabled()
    states = dict(hub.progress_bar_states)
    hf.set_verbosity(hf.log_levels.get(environ.get("TRANSFORMERS_VERBOSITY") or "error", verbosity))
    if environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "1").upper() in {"1", "ON", "YES", "TRUE"}:
        hf.disable_progress_bar()
    try:
        yield
    finally:
        hf.set_verbosity(verbosity)
        (hf.enable_progress_bar if bars else hf.disable_progress_bar)()
        hub.progress_bar_states.clear()
        hub.progress_bar_states.update(states)


def _interpreter_warnings() -> None:
    """The warning filters a fresh interpreter starts with, warnings shown on `sys.stderr`."""
    warnings.resetwarnings()
    for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning):
        warnings.simplefilter("ignore", category)
    warnings.simplefilter("ignore", ResourceWarning)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")

    def show(message: Any, category: Any, filename: str, lineno: int, *_: Any, **__: Any) -> None:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno))

    warnings.showwarning = show


def _loggers() -> dict[str, logging.Logger]:
    found = {
        name: logger
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    return {"": logging.root, **found}


def _logging_state() -> dict[str, Any]:
    return {
        "disable": logging.root.manager.disable,
        "warnings": getattr(logging, "_warnings_showwarning", None),
        "loggers": {
            name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
            for name, logger in _loggers().items()
        },
    }


def _restore_logging(state: dict[str, Any], buffers: set[int]) -> None:
    """Levels, handlers and switches of every logger as they were; a `vidtt` logger made by
    the run is left unconfigured; a handler made by the run that writes to its buffers writes
    to this process's stderr instead."""
    logging.disable(state["disable"])
    logging._warnings_showwarning = state["warnings"]  # type: ignore[attr-defined]
    before = state["loggers"]
    for name, logger in _loggers().items():
        if name in before:
            logger.level, handlers, logger.propagate, logger.disabled = before[name]
            logger.handlers[:] = handlers
        elif name == "vidtt" or name.startswith("vidtt."):
            logger.setLevel(logging.NOTSET)
            logger.handlers.clear()
            logger.propagate, logger.disabled = True, False
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in buffers:
                handler.setStream(sys.stderr)
    logging.root.manager._clear_cache()  # type: ignore[attr-defined]


def _torch_state() -> Any:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.random.get_rng_state()


def _restore_torch(state: Any) -> None:
    """torch's random state as before (`--seed` sets it); imported by the run, a random seed,
    as a fresh import has."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if state is None:
        torch.seed()
    else:
        torch.random.set_rng_state(state)
