"""Run folders: what a job folder holds, and the rules for writing into one.

A job folder holds a *finished* run once its ``metrics.json`` exists. A run never writes into a
folder that holds a finished run unless asked (``overwrite=true``), and never starts afresh in a
folder that holds an unfinished one (continue it with ``ckpt_path=`` or ``resume_sweep=``, or
pass ``overwrite=true``). Hydra's own files follow the same rule: the resolvers below stop Hydra
from rewriting an existing ``.hydra/`` and from appending to the log of a finished run, so a
refused run leaves the folder byte-for-byte as it was.

A folder has one owner at a time: the first job to claim it (:mod:`src.runs.lock`, when Hydra
resolves the log file) owns it until it ends; another job started there is refused before it
writes anything. The running marker a job keeps in its folder is in :mod:`src.runs.marker`;
comparing a job's config with the one saved in its folder, in :mod:`src.runs.config_diff`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from src.runs.lock import claim, release
from src.runs.lock import owner as lock_owner
from src.runs.marker import RUNNING_FILE, process_alive

# The marker's writers, imported from here by src.train, src.eval and src.cli.job.
from src.runs.marker import clear_running as clear_running
from src.runs.marker import mark_running as mark_running

log = logging.getLogger(__name__)

FINISHED_FILE = "metrics.json"
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


class RunFolderError(RuntimeError):
    """A job refused to write into its folder; nothing was written (no ``failure.txt`` either)."""


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
    before the job can refuse — or when another live job owns the folder. Jobs that may replace
    it write it themselves (:func:`save_hydra_record`)."""
    if not claim(output_dir):
        return None
    return None if (Path(output_dir) / ".hydra").exists() else ".hydra"


def job_log_file(output_dir: str, task_name: str, overwrite: Any = False) -> str:
    """The job's log file, or ``os.devnull`` for a folder that another live job owns, or that
    holds a finished run this job must leave untouched (a refused run, or a finished job that
    ``resume_sweep`` skips). Hydra resolves it first of a job's files: here the job claims its
    folder (:func:`src.runs.lock.claim`)."""
    if not claim(output_dir):
        return os.devnull
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


def refuse_if_running(folder: str | Path) -> None:
    """Refuse a job whose folder another live process owns: its lock (:func:`src.runs.lock.claim`)
    or, for a job that holds none (an older version), its running marker names a live process
    of this machine. Otherwise this process owns the folder from now on (in a Hydra job, since
    Hydra resolved its log file). A folder that does not exist yet has no owner (Hydra creates
    and claims a job's folder before the job starts). Under DDP only rank 0 claims it."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    if claim(folder):
        info = _marker(folder)
        pid = info.get("pid")
        if not (
            info.get("host") == socket.gethostname() and pid != os.getpid() and process_alive(pid)
        ):
            return
        release(folder)
    else:
        info = lock_owner(folder)
    pid, host, started = (info.get(k, "?") for k in ("pid", "host", "started"))
    raise RunFolderError(
        f"{folder} is in use by a running job (pid {pid} on {host}, started {started}); nothing "
        "was written. Wait for it to end, or choose another output folder (hydra.run.dir=…)."
    )


def _marker(folder: Path) -> dict[str, Any]:
    try:
        info = json.loads((folder / RUNNING_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}
