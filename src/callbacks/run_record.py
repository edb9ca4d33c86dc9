"""What a training checkpoint records about its run, and what a resume applies."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L

from src.runs.checkpoints import RUN_KEY

log = logging.getLogger(__name__)


class RunRecord(L.Callback):
    """Adds ``checkpoint["zsl_run"]`` to every checkpoint: the run's resolved config, its
    dataset identity (:func:`~src.runs.checkpoints.dataset_identity`) and its output folder.

    ``src.train`` compares a resumed run's settings with the recorded config and refuses another
    dataset; ``src.eval`` evaluates with the recorded data config by default; the history of a
    resumed run comes from the recorded folder's ``csv/metrics.csv``.
    """

    def __init__(self, config: dict[str, Any], dataset: dict[str, str], output_dir: str) -> None:
        self.record = {"config": config, "dataset": dataset, "output_dir": str(output_dir)}

    def on_save_checkpoint(
        self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        checkpoint[RUN_KEY] = self.record


class ResumedOptimizerSettings(L.Callback):
    """Applies the configured optimiser settings (learning rate, weight decay…) to a resumed run.

    Lightning restores the optimiser from the checkpoint, settings included, so a changed
    ``model.lr`` would be written into the run's config but never used. At the start of training
    (after the restore) every hyper-parameter of the optimisers' parameter groups is set to the
    value that ``configure_optimizers`` gives under the current config; the optimiser's state
    (Adam's moments) stays as restored.
    """

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fresh = pl_module.configure_optimizers()
        configured = _optimizers(fresh)
        for restored, wanted in zip(trainer.optimizers, configured, strict=False):
            for group, target in zip(restored.param_groups, wanted.param_groups, strict=False):
                for key, value in target.items():
                    if key == "params" or group.get(key) == value:
                        continue
                    log.info(
                        "Resumed optimiser: %s %s → %s (from the current config)",
                        key,
                        group.get(key),
                        value,
                    )
                    group[key] = value


def _optimizers(configured: Any) -> list[Any]:
    """The optimisers of any ``configure_optimizers`` return form."""
    import torch

    if isinstance(configured, torch.optim.Optimizer):
        return [configured]
    if isinstance(configured, dict):
        return [configured["optimizer"]]
    if isinstance(configured, list | tuple):
        if configured and isinstance(configured[0], list | tuple):
            return list(configured[0])
        return [o["optimizer"] if isinstance(o, dict) else o for o in configured]
    return []
