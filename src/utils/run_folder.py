"""Run folders: what a job folder holds, and the rules for writing into one.

A job folder holds a *finished* run once its ``metrics.json`` exists. A run never writes into a
folder that holds a finished run unless asked (``overwrite=true``), and never starts afresh in a
folder that holds an unfinished one (continue it with ``ckpt_path=`` or ``resume_sweep=``, or
pass ``overwrite=true``). Hydra's own files follow the same rule: the resolvers below stop Hydra
from rewriting an existing ``.hydra/`` and from appending to the log of a finished run, so a
refused run leaves the folder byte-for-byte as it was.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import socket
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FINISHED_FILE = "metrics.json"
#: written when a job starts, removed when it ends: tells the report which jobs still run
RUNNING_FILE = ".running.json"
#: what a training or evaluation job writes into its folder (``overwrite=true`` removes these)
OUTPUTS = (
    FINISHED_FILE,
    "config.yaml",
    "per_class.csv",
    "confusion.png",
    "failure.txt",
    "csv",
    "checkpoints",
    "wandb",
    ".hydra",
    RUNNING_FILE,
)
#: config keys that cannot change a result (prefixes end with a dot): never compared between a
#: job and its saved config, never a "setting" of the report
BOOKKEEPING = (
    "ckpt_path",
    "resume_sweep",
    "overwrite",
    "print_config",
    "tags",
    "task_name",
    "paths.",
    "logger",
    "logger.",
    "hydra.",
    "callbacks.rich_progress_bar",
    "callbacks.rich_progress_bar.",
)


class RunFolderError(RuntimeError):
    """A job refused to write into its folder; nothing was written (no ``failure.txt`` either)."""


def matches(key: str, patterns: Iterable[str]) -> bool:
    """Whether ``key`` is one of ``patterns`` or lies under one that ends with a dot."""
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def is_finished(folder: str | Path) -> bool:
    return (Path(folder) / FINISHED_FILE).is_file()


def holds_run(folder: str | Path) -> bool:
    """Whether a job has already run in ``folder`` (finished, failed or interrupted)."""
    folder = Path(folder)
    return any((folder / name).exists() for name in OUTPUTS if name not in (".hydra",))


# ------------------------------------------------------------------------ Hydra resolvers
def hydra_output_subdir(output_dir: str) -> str | None:
    """``hydra.output_subdir``: ``.hydra`` for a new folder, ``None`` (write nothing) when the
    folder already holds one — Hydra would otherwise rewrite a finished or resumed job's record
    before the job can refuse. Jobs that may replace it write it themselves
    (:func:`save_hydra_record`)."""
    return None if (Path(output_dir) / ".hydra").exists() else ".hydra"


def job_log_file(output_dir: str, task_name: str, overwrite: Any = False) -> str:
    """The job's log file, or ``os.devnull`` for a folder that holds a finished run that this
    job must leave untouched (a refused run, or a finished job that ``resume_sweep`` skips)."""
    if is_finished(output_dir) and not _truthy(overwrite):
        return os.devnull
    return str(Path(output_dir) / f"{task_name}.log")


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


# ---------------------------------------------------------------------------- the guard
def plan_run_folder(
    folder: str | Path, overwrite: bool, ckpt_path: str | None, what: str = "run"
) -> str:
    """Decide whether a job may write into ``folder``, and how it starts there; writes nothing.

    Returns ``"new"`` (no earlier job there), ``"continue"`` (an unfinished run continued in
    place from one of its own checkpoints), ``"overwrite"`` (``overwrite=true``: the earlier
    outputs go) or ``"overwrite-continue"`` (``overwrite=true`` on a finished run continued from
    one of its own checkpoints: its checkpoints and history stay). :func:`prepare_run_folder`
    carries the plan out once the job's other checks have passed.

    Raises:
        RunFolderError: the folder holds a finished run (without ``overwrite``), or an
            unfinished one that this job would restart from scratch (without ``overwrite``).
    """
    folder = Path(folder)
    in_place = ckpt_path is not None and _inside(Path(ckpt_path), folder)
    if is_finished(folder):
        if not overwrite:
            raise RunFolderError(
                f"{folder} holds a finished {what} ({FINISHED_FILE}); nothing was written. "
                "Choose another output folder (hydra.run.dir=…), or pass overwrite=true to "
                "replace it."
            )
        return "overwrite-continue" if in_place else "overwrite"
    if in_place:
        return "continue"
    if not holds_run(folder):
        return "new"
    if not overwrite:
        last = folder / "checkpoints" / "last.ckpt"
        hint = (
            f"Continue it with ckpt_path={last}"
            if last.is_file()
            else "Choose another output folder (hydra.run.dir=…)"
        )
        raise RunFolderError(
            f"{folder} holds an unfinished {what} (no {FINISHED_FILE}); nothing was written. "
            f"{hint}, or pass overwrite=true to start it again."
        )
    return "overwrite"


def prepare_run_folder(folder: str | Path, plan: str, task_cfg: Any = None) -> None:
    """Carry out :func:`plan_run_folder`'s plan: remove what ``overwrite`` replaces, and record
    this job's ``.hydra/`` where Hydra left an earlier one in place."""
    folder = Path(folder)
    if plan.startswith("overwrite"):
        remove_outputs(folder, keep_history=plan == "overwrite-continue")
    if plan != "new" and task_cfg is not None:
        save_hydra_record(folder, task_cfg)


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def remove_outputs(folder: Path, keep_history: bool) -> None:
    """Remove what an earlier job wrote into ``folder`` (``overwrite=true``); its checkpoints and
    CSV history stay when the new job continues from one of those checkpoints."""
    kept = ("checkpoints", "csv") if keep_history else ()
    removed = []
    for name in OUTPUTS:
        path = folder / name
        if name in kept or not path.exists():
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        removed.append(name)
    for path in folder.glob("failure-*.txt"):
        path.unlink()
        removed.append(path.name)
    if removed:
        log.warning("overwrite=true: removed %s from %s", ", ".join(removed), folder)


def save_hydra_record(folder: str | Path, task_cfg: Any) -> None:
    """Write ``.hydra/`` (config, Hydra config, overrides) of this job, as Hydra does for a new
    folder; used when a job legitimately replaces or continues a folder that already had one."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.instance().cfg
    target = Path(folder) / ".hydra"
    target.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(task_cfg, target / "config.yaml")
    OmegaConf.save(hydra_cfg, target / "hydra.yaml")
    OmegaConf.save(hydra_cfg.hydra.overrides.task, target / "overrides.yaml")


# ------------------------------------------------------------------------- running marker
def mark_running(folder: str | Path) -> Path:
    """Write the running marker (host, pid, start time) of this process into ``folder``."""
    path = Path(folder) / RUNNING_FILE
    info = {"host": socket.gethostname(), "pid": os.getpid(), "started": _now()}
    path.write_text(json.dumps(info) + "\n")
    return path


def clear_running(folder: str | Path) -> None:
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
    if _alive(pid):
        return "running", f"pid {pid}, started {started}"
    return "interrupted", f"its process (pid {pid}, started {started}) is gone: killed or crashed"


def refuse_if_running(folder: str | Path) -> None:
    """Refuse a job whose folder is in use by another live process of this machine (its
    running marker names it); a marker of another machine cannot be checked and is ignored,
    so a job pre-empted on one node resumes on another."""
    path = Path(folder) / RUNNING_FILE
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    pid = info.get("pid")
    if info.get("host") == socket.gethostname() and pid != os.getpid() and _alive(pid):
        raise RunFolderError(
            f"{folder} is in use by a running job (pid {pid}, started {info.get('started')}); "
            "nothing was written. Wait for it to end, or stop it first."
        )


def _alive(pid: Any) -> bool:
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


# ----------------------------------------------------------------- comparing two configs
def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.lr": 0.001, ...}`` of a nested dict (lists stay values)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def differing_keys(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignored: Iterable[str] = BOOKKEEPING
) -> list[str]:
    """Flat keys whose values differ (numbers compared as numbers), ``ignored`` aside."""
    ignored = tuple(ignored)
    keys = set(saved) | set(current)
    return sorted(
        k
        for k in keys
        if not matches(k, ignored)
        and _normal(saved.get(k, _UNSET), k) != _normal(current.get(k, _UNSET), k)
    )


_UNSET = "<unset>"


def is_target(key: str) -> bool:
    """Whether a flat key is a ``_target_`` (``model._target_``)."""
    return key.rsplit(".", 1)[-1] == "_target_"


def canonical_target(path: Any) -> Any:
    """A ``_target_`` by its defining module: ``src.models.MetricZSLSystem`` (a re-export, as
    configs spelt it before) → ``src.models.system.MetricZSLSystem``, so both spellings of one
    class compare equal. A value that does not import is returned as it is."""
    if not isinstance(path, str):
        return path
    module_path, _, name = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_path), name)
    except Exception:  # an old or mistyped path is compared as written
        return path
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else path


def _normal(value: Any, key: str = "") -> Any:
    if is_target(key):
        return canonical_target(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def describe_changes(
    keys: list[str], saved: Mapping[str, Any], current: Mapping[str, Any], limit: int = 6
) -> str:
    """``model.lr (0.001 → 0.5), seed (1 → 2)``; at most ``limit`` keys, then a count."""
    shown = [f"{k} ({saved.get(k, _UNSET)} → {current.get(k, _UNSET)})" for k in keys[:limit]]
    more = len(keys) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
