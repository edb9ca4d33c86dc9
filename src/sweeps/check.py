"""``resume_sweep=<folder>`` checked before a sweep starts (a Hydra callback).

Before the sweeper launches anything (and before it rewrites ``multirun.yaml``), the folder must
exist, and every job folder already in it must have been run with the overrides of the grid
point it would become now; otherwise the sweep stops, naming each job and the keys that
differ, with nothing written. Jobs are matched to grid points as Hydra's basic sweeper numbers
them (job ``n`` is the n-th point of the grid, subfolder ``n``); other sweepers (Optuna) give
every new trial a new folder, so only the folder itself is checked for them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.runs.config_diff import BOOKKEEPING, matches
from src.runs.folder import RunFolderError, holds_run
from src.runs.lock import claim, release
from src.runs.lock import owner as lock_owner
from src.runs.resume import missing_sweep_message

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
JOB_NUM_SUBDIR = "${hydra.job.num}"


class ResumeSweepRefused(SystemExit):
    """Stops the sweep: Hydra turns a callback's ``Exception`` into a warning and goes on, so
    the refusal is a ``SystemExit`` (its message is printed, the exit status is 1)."""


class ResumeSweepCheck(Callback):
    """Refuses a ``resume_sweep`` whose folder is missing, is not a sweep's, or whose grid
    relabels earlier jobs; then holds the sweep folder for the whole sweep
    (:func:`src.runs.lock.claim`), so that a second sweep started into it is refused."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            check_resume_sweep(config)
            self.folder = Path(str(config.hydra.sweep.dir))
            if not claim(self.folder):
                raise RunFolderError(
                    f"{self.folder} is in use by a running sweep (pid "
                    f"{lock_owner(self.folder).get('pid', '?')}); nothing was written. Wait "
                    "for it to end, or resume it afterwards."
                )
        except RunFolderError as error:
            raise ResumeSweepRefused(f"Error: {error}") from error

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        folder = getattr(self, "folder", None)
        if folder is not None:
            release(folder)


def check_resume_sweep(config: DictConfig) -> None:
    """Raise :class:`RunFolderError` when ``config.resume_sweep`` must not be resumed."""
    folder = config.get("resume_sweep")
    if not folder:
        return
    sweep = Path(str(folder))
    if not sweep.is_dir():
        raise RunFolderError(missing_sweep_message(sweep))
    if holds_run(sweep) or (sweep / ".hydra").is_dir():
        raise RunFolderError(
            f"resume_sweep={sweep} is a single run's folder, not a sweep's; nothing was written. "
            "Give the folder of a multirun (outputs/<task>/multiruns/<date>_<time>_<tag>), or "
            "continue a single run with ckpt_path=<run>/checkpoints/last.ckpt."
        )
    jobs = [p for p in sweep.iterdir() if (p / ".hydra").is_dir()]
    if not (sweep / "multirun.yaml").is_file() and not jobs:
        raise RunFolderError(
            f"resume_sweep={sweep} is not a sweep's folder (no multirun.yaml, no job folders); "
            "nothing was written. Give the folder of a multirun "
            "(outputs/<task>/multiruns/<date>_<time>_<tag>)."
        )
    grid = grid_points(config)
    if grid is None:
        return
    problems = []
    for num, overrides in enumerate(grid):
        saved_file = sweep / str(num) / ".hydra" / "overrides.yaml"
        if not saved_file.is_file():
            continue  # not started: it runs now
        saved = as_dict(OmegaConf.to_container(OmegaConf.load(saved_file)))
        now = as_dict(overrides)
        keys = sorted(
            k
            for k in set(saved) | set(now)
            if not matches(k, BOOKKEEPING) and saved.get(k) != now.get(k)
        )
        if keys:
            changes = ", ".join(
                f"{k} ({saved.get(k, '<unset>')} → {now.get(k, '<unset>')})" for k in keys
            )
            problems.append(f"job {num}: {changes}")
    if problems:
        shown = "; ".join(problems[:4]) + (
            f"; and {len(problems) - 4} more jobs" if len(problems) > 4 else ""
        )
        raise RunFolderError(
            f"resume_sweep={sweep}: this command's grid does not match the jobs already "
            f"there ({shown}); nothing was written. Resume with the sweep's original "
            f"command (its overrides are in {sweep}/multirun.yaml), or start a new sweep."
        )


def as_dict(overrides: list[str]) -> dict[str, str]:
    """``{"miner": "random", "seed": "1"}`` of Hydra override strings (``+``/``~`` dropped)."""
    out = {}
    for override in overrides:
        key, _, value = str(override).partition("=")
        out[key.lstrip("+~")] = value
    return out


def grid_points(config: DictConfig) -> list[list[str]] | None:
    """Every job's overrides, in job-number order, as the basic sweeper builds them; ``None``
    for another sweeper or a custom job subfolder."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    hydra_cfg = config.hydra
    if hydra_cfg.sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    if OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir") != JOB_NUM_SUBDIR:
        return None
    params = hydra_cfg.sweeper.get("params") or {}
    arguments = [f"{k}={v}" for k, v in params.items()]
    arguments += list(OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
    parsed = OverridesParser.create().parse_overrides(arguments)
    batches = BasicSweeper.split_arguments(parsed, hydra_cfg.sweeper.get("max_batch_size"))
    return [list(job) for batch in batches for job in batch]
