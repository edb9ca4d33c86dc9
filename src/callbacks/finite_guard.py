"""Stop training at the first non-finite loss, before the optimiser can use it."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLossGuard(L.Callback):
    """Raises :class:`NonFiniteLossError` naming epoch and step when the loss is NaN or ±inf.

    The check runs before the backward pass, so the parameters are never updated from a
    non-finite loss; the checkpoints written so far (``last.ckpt`` of the last finished epoch)
    stay as they were.
    """

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor):
        if bool(torch.isfinite(loss)):
            return
        checkpoint = getattr(trainer.checkpoint_callback, "dirpath", None)
        last = Path(checkpoint) / "last.ckpt" if checkpoint else None
        kept = (
            f"the last good checkpoint is {last}"
            if last is not None and last.is_file()
            else "no checkpoint was written before it"
        )
        hparams = pl_module.hparams
        raise NonFiniteLossError(
            f"training loss is {float(loss)} at epoch {trainer.current_epoch}, global step "
            f"{trainer.global_step}: stopped before the optimiser step ({kept}). Likely causes: "
            f"a learning rate too high (model.lr={hparams.get('lr')}), features that are not "
            "standardised or normalised (data.standardise / data.l2_features), or a very large "
            f"model.beta={hparams.get('beta')}."
        )
