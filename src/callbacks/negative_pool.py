"""The callback that wires the negative pool to the trainer: refresh at epoch start, checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from src.mining.pool import NegativePool
from src.mining.scorer import PoolTrainedModel


class NegativePoolRefresh(L.Callback):
    """Refreshes a :class:`~src.mining.pool.NegativePool` at the start of its refresh epochs.

    The pool scores the datamodule's training images with the module's scorer (any
    :class:`~src.mining.scorer.PoolTrainedModel`: the metric of
    :class:`~src.models.system.MetricZSLSystem`, the compatibility of
    :class:`~src.models.compatibility_system.CompatibilityZSLSystem`); the module reads its
    negatives from ``pl_module.negative_pool`` (kept on the training device; only checkpoints
    hold a host copy). The pool's state is saved in checkpoints, and every refresh's
    diagnostics are logged under ``pool/``.

    Args:
        pool: the pool (strategy, schedule, seed, memory budget).
    """

    def __init__(self, pool: NegativePool) -> None:
        if not isinstance(pool, NegativePool):
            raise TypeError(
                f"NegativePoolRefresh needs a NegativePool, got {type(pool).__name__}: "
                "configure callbacks.negative_pool.pool (conf/callbacks/negative_pool.yaml)."
            )
        self.pool = pool

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":  # evaluation of any model: nothing to mine
            return
        if not isinstance(pl_module, PoolTrainedModel):
            raise TypeError(
                f"the negative pool trains a model that scores pairs for it (a PoolTrainedModel: "
                f"MetricZSLSystem, CompatibilityZSLSystem), not a {type(pl_module).__name__}: "
                "drop callbacks.negative_pool for models without pairs to train."
            )
        self.pool.miner.check_num_classes(len(trainer.datamodule.seen_classes))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: PoolTrainedModel) -> None:
        epoch = trainer.current_epoch
        if self.pool.due(epoch):
            stats = self.refresh(pl_module, trainer.datamodule, epoch)
            pl_module.log_dict(stats, on_step=False, on_epoch=True)
        pl_module.negative_pool = self.pool.negatives.to(pl_module.device)

    def refresh(self, pl_module: PoolTrainedModel, datamodule: Any, epoch: int) -> dict[str, float]:
        """Refresh the pool from the module's scorer and the datamodule's training images."""
        device = pl_module.device
        seen = datamodule.seen_classes.to(device)
        return self.pool.refresh(
            pl_module.pool_scorer(),
            seen_signatures=datamodule.signatures.to(device)[seen],
            seen_classes=seen,
            features=datamodule.train_features,
            local_labels=torch.searchsorted(seen, datamodule.train_labels.to(device)),
            beta=pl_module.mining_beta,
            epoch=epoch,
        )

    def state_dict(self) -> dict[str, Any]:
        return self.pool.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pool.load_state_dict(state_dict)
