"""Which code produced a result: the git commit, whether the tree was dirty, the version.

:func:`provenance` is read once per process and written into ``metrics.json``
(``code/commit``, ``code/dirty``, ``code/version``), the W&B run config (``code``) and
``protocol.csv``:

- from a clone (or an editable install): ``git rev-parse HEAD`` and ``git status`` of the
  checkout ``src`` is imported from (untracked files aside: the run outputs are untracked);
- from an installed package (``pip install .``, a wheel): the commit the package was built
  from and its dirty flag, recorded in ``src/build_info.json`` by ``setup.py``; when it was
  built outside a git checkout, the two are ``None`` and the version alone names the code.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path

DISTRIBUTION = "zsl-hardneg"
PACKAGE = Path(__file__).resolve().parents[1]
BUILD_INFO = PACKAGE / "build_info.json"


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(PACKAGE.parent), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def provenance() -> dict[str, str | bool | None]:
    """``{"commit": sha or None, "dirty": bool or None, "version": str or None}``."""
    commit = dirty = None
    if (PACKAGE.parent / ".git").exists() and not BUILD_INFO.is_file():  # a checkout
        commit = _git("rev-parse", "HEAD")
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = bool(status) if commit and status is not None else None
    elif BUILD_INFO.is_file():  # installed from a build of a checkout
        info = json.loads(BUILD_INFO.read_text())
        commit, dirty = info.get("commit"), info.get("dirty")
    return {"commit": commit, "dirty": dirty, "version": _version()}


def provenance_fields(prefix: str = "code/") -> dict[str, str | bool | None]:
    """:func:`provenance` with prefixed keys, for flat records (``metrics.json``)."""
    return {f"{prefix}{key}": value for key, value in provenance().items()}
