"""One owner per run folder: an exclusive lock on ``<folder>/.lock``, held for the whole job.

A job claims its folder when Hydra resolves the job's log file and ``.hydra/`` record
(:mod:`src.runs.resolvers`), before it writes either: a process that finds the folder claimed
by a live job writes neither (its log goes to ``os.devnull``, no ``.hydra/``) and is refused in
one line as soon as the job starts (:func:`src.runs.folder.refuse_if_running`). The lock is
``flock`` on an open file: the kernel releases it when its process ends, killed or not, so a
lock left by a killed job is recovered by the next claim (a forked child of the killed process,
e.g. a data-loader worker, holds it until it exits too). The file records its owner (host, pid,
start time) for the refusal's message, and is removed when the job releases the folder.

Under DDP the processes of rank > 0 run in rank 0's folder and claim nothing.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from datetime import datetime
from pathlib import Path
from typing import Any

LOCK_FILE = ".lock"
#: the environment variables that give a process's DDP rank (as Lightning reads them)
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")

#: folders this process holds: resolved path → the lock file's descriptor
_HELD: dict[Path, int] = {}


def claim(folder: str | Path) -> bool:
    """Own ``folder`` (creating it) unless another live process does; ``True`` when this process
    owns it, now or already. Never waits."""
    if process_rank() != 0:
        return True
    folder = Path(folder).resolve()
    if folder in _HELD:
        return True
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_FILE
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise
        # The previous owner removes the file before it lets go: a lock on a removed file is
        # no lock, so claim the file now at that path instead.
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    owner = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
    os.ftruncate(fd, 0)
    os.write(fd, (json.dumps(owner) + "\n").encode())
    _HELD[folder] = fd
    return True


def release(folder: str | Path) -> None:
    """Let go of ``folder`` (a no-op unless this process holds it): remove the lock file, then
    unlock it."""
    folder = Path(folder).resolve()
    fd = _HELD.pop(folder, None)
    if fd is None:
        return
    try:
        (folder / LOCK_FILE).unlink(missing_ok=True)
    finally:
        os.close(fd)


def holds(folder: str | Path) -> bool:
    """Whether this process holds ``folder``."""
    return Path(folder).resolve() in _HELD


def owner(folder: str | Path) -> dict[str, Any]:
    """What the lock file of ``folder`` says of its owner (host, pid, started); ``{}`` if
    unreadable."""
    try:
        info = json.loads((Path(folder) / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def process_rank() -> int:
    """This process's DDP rank from the environment (0 without DDP)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value is not None:
            try:
                return int(value)
            except ValueError:
                continue
    return 0


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")
