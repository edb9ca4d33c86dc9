"""Resuming: a sweep's jobs (``resume_sweep``) and a run from a checkpoint (``ckpt_path``).

- A job of ``resume_sweep=<folder>`` compares its saved config with the one it would run now and
  stops, naming the keys, when they differ (the sweep-level check of
  :mod:`src.sweeps.check` does the same for every job before the sweep starts); a finished
  job returns its metrics untouched; an interrupted one continues from its newest valid
  checkpoint.
- A run with ``ckpt_path=`` compares the checkpoint's recorded config with the current one:
  settings a resume applies (:data:`APPLIED_ON_RESUME`: the trainer, the optimiser's learning
  rate and weight decay, the loss weights, evaluation options, batch sizes) are applied and
  logged; any other difference is refused with the keys named.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from src.core.rank import is_rank_zero
from src.runs.checkpoints import RUN_KEY, CheckpointError, checkpoint_to_resume
from src.runs.config_diff import BOOKKEEPING, describe_changes, differing_keys, flatten, matches
from src.runs.folder import RunFolderError

log = logging.getLogger(__name__)

#: settings that a resumed run applies when they differ from the checkpoint's
APPLIED_ON_RESUME = (
    "trainer.",
    "model.lr",
    "model.weight_decay",
    "model.beta",
    "model.attribute_weight",
    "model.negative_weight",
    "model.margin",
    "model.calibration_gamma",
    "model.gamma_grid",
    "data.batch_size",
    "data.eval_batch_size",
    "data.features_on_device",
    "pool.memory_budget_mb",
    "optimized_metric",
)
#: keys never compared on resume: bookkeeping, where the data files live, and copies of other
#: keys (the pool callback's pool is ``pool``, whose miner and seed are ``miner`` and ``seed``)
IGNORED_ON_RESUME = (
    *BOOKKEEPING,
    "callbacks.model_checkpoint.dirpath",
    "callbacks.negative_pool.pool.",
    "pool.miner.",
    "pool.seed",
    "data.data_dir",
    "data.cache_dir",
)


def resume_settings(checkpoint: dict[str, Any], current: dict[str, Any], ckpt_path: Any) -> list:
    """Check a resume's settings against the checkpoint's; return the keys it applies.

    Raises:
        CheckpointError: a setting differs that a resume cannot apply (the model's shape or
            initialisation, the miner, the seed, the data…), naming every such key.
    """
    record = checkpoint.get(RUN_KEY) or {}
    if not record.get("config"):
        log.warning(
            "ckpt_path=%s records no run config (saved by an older version): the resumed "
            "settings cannot be compared with the checkpoint's.",
            ckpt_path,
        )
        return []
    saved, now = flatten(record["config"]), flatten(current)
    keys = differing_keys(saved, now, IGNORED_ON_RESUME)
    refused = [k for k in keys if not matches(k, APPLIED_ON_RESUME)]
    if refused:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained with other settings that a resume cannot apply: "
            f"{describe_changes(refused, saved, now)}; resume with the checkpoint's values, or "
            "start a new run without ckpt_path."
        )
    if keys:
        log.info("Resuming with changed settings (applied): %s", describe_changes(keys, saved, now))
    return keys


def resume_sweep_state(cfg: Any, current: dict[str, Any]) -> dict[str, float] | str | None:
    """For a job of ``resume_sweep``: its metrics if it finished, else a checkpoint to continue
    from (``None``: it starts again).

    A failure record of an earlier attempt is kept under a new name; nothing is deleted.

    Raises:
        RunFolderError: the sweep folder does not exist, or this job's folder holds a job that
            ran with other settings (keys named); nothing was written.
    """
    sweep = Path(str(cfg.resume_sweep))
    if not sweep.is_dir():
        raise RunFolderError(missing_sweep_message(sweep))
    output_dir = Path(cfg.paths.output_dir)
    check_sweep_job(output_dir, current)
    finished = output_dir / "metrics.json"
    if finished.is_file():
        return json.loads(finished.read_text())
    failure = output_dir / "failure.txt"
    if failure.is_file() and is_rank_zero():
        attempt = len(list(output_dir.glob("failure-*.txt"))) + 1
        failure.rename(output_dir / f"failure-{attempt}.txt")
    return checkpoint_to_resume(output_dir / "checkpoints")


def missing_sweep_message(sweep: Path) -> str:
    return (
        f"resume_sweep={sweep}: no such folder; nothing was started. Give the folder of the "
        "sweep to complete (outputs/<task>/multiruns/<date>_<time>_<tag>), or drop resume_sweep "
        "to start a new sweep."
    )


def check_sweep_job(folder: Path, current: dict[str, Any]) -> None:
    """Refuse to continue or skip a job whose saved config differs from the current one."""
    saved_file = folder / "config.yaml"
    if not saved_file.is_file():
        return
    saved = flatten(OmegaConf.to_container(OmegaConf.load(saved_file)))
    now = flatten(current)
    keys = differing_keys(saved, now, BOOKKEEPING)
    if keys:
        raise RunFolderError(
            f"resume_sweep: job {folder} ran with other settings than this command gives it: "
            f"{describe_changes(keys, saved, now)}; nothing was written. Resume with the "
            "sweep's original command, or start a new sweep."
        )
