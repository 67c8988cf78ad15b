"""Ends the processes of a private Ray cluster when the vidtt driver that started it dies.

Ray ties its head processes (GCS, raylet, dashboard, monitors) to the driver that started them,
but the raylet's helpers (the dashboard agent and the runtime-env agent) outlive a driver killed
with SIGKILL by a minute or more: they find the raylet gone, then wait on the dead GCS. This
script, started by `vidtt.jobs.ray_cluster` beside such a cluster in a session of its own (so a
Ctrl-C or a hang-up at the terminal leaves it to do its work), reads its standard input, a pipe
whose other end only the driver holds, until the driver is gone however it ended; it then
kills the processes named on its command line (`PID:START`, START the start time in
/proc/PID/stat, so that a process with a reused id is never touched) and every process started
by one of them as the raylet (`RAY_RAYLET_PID` in its environment), and exits.

It runs as a plain script (`python -I ray_reaper.py ...`) and imports nothing but the standard
library; Linux only (it reads /proc).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def start_time(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[19].decode() if len(fields) > 19 and fields[0] != b"Z" else None


def raylet_of(pid: int) -> int | None:
    """The `RAY_RAYLET_PID` in a process's environment, if any."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            for item in environ.read().split(b"\0"):
                if item.startswith(b"RAY_RAYLET_PID="):
                    return int(item.partition(b"=")[2])
    except (OSError, ValueError):
        return None
    return None


def targets(named: dict[int, str]) -> list[int]:
    """The named processes still alive as themselves, and those their raylet started since."""
    found = [pid for pid, start in named.items() if start_time(pid) == start]
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in named or int(entry) == os.getpid():
            continue
        pid = int(entry)
        raylet = raylet_of(pid)
        started = start_time(pid)
        if raylet in named and started is not None and int(started) >= int(named[raylet]):
            found.append(pid)
    return found


def main(argv: list[str]) -> int:
    named: dict[int, str] = {}
    for item in argv:
        pid, _, start = item.partition(":")
        named[int(pid)] = start
    for sent in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sent, signal.SIG_IGN)  # the driver's end of the pipe decides
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    for target in targets(named):
        with contextlib.suppress(OSError):  # gone meanwhile
            os.kill(target, signal.SIGKILL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
