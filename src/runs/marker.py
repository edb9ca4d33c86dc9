"""The running marker (``.running.json``): which process runs in a job folder, and whether it
still does.

A job writes the marker (host, pid, start time) when it starts and removes it when it ends, so a
folder without results whose marker names a live process is *running*, one whose process is gone
was *interrupted* (:func:`job_activity`, read by the sweep report). Who may write into a folder
is the folder's lock (:mod:`src.runs.lock`), which a job takes before it writes anything.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

#: written when a job starts, removed when it ends: tells the report which jobs still run
RUNNING_FILE = ".running.json"


def mark_running(folder: str | Path) -> Path:
    """Write the running marker (host, pid, start time) of this process into ``folder``."""
    path = Path(folder) / RUNNING_FILE
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
    path.write_text(json.dumps(info) + "\n")
    return path


def clear_running(folder: str | Path) -> None:
    """At a job's end: remove this process's running marker, and let go of the folder
    (:func:`src.runs.lock.release`)."""
    from src.runs.lock import release

    release(folder)
    path = Path(folder) / RUNNING_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


def job_activity(folder: str | Path) -> tuple[str, str]:
    """(status, note) of a job folder without results, from its running marker: ``running``
    (its process is alive), ``interrupted`` (its process is gone), ``incomplete`` (no marker:
    not started yet, or stopped before it wrote one)."""
    path = Path(folder) / RUNNING_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return "incomplete", "no running marker: not started yet, or stopped before its start"
    host, pid, started = info.get("host"), info.get("pid"), info.get("started", "?")
    if host != socket.gethostname():
        return "running", f"started {started} on {host}, pid {pid}: running there, or killed"
    if process_alive(pid):
        return "running", f"pid {pid}, started {started}"
    return "interrupted", f"its process (pid {pid}, started {started}) is gone: killed or crashed"


def process_alive(pid: Any) -> bool:
    """Whether process ``pid`` of this machine exists."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
