"""Stop training at the first non-finite loss, before the optimiser can use it."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch import Tensor


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


class DivergedLossError(FloatingPointError):
    """The training loss grew by orders of magnitude over its value at the first step."""


class FiniteLossGuard(L.Callback):
    """Raises :class:`NonFiniteLossError` naming epoch and step when the loss is NaN or ±inf.

    The check runs before the backward pass, so the parameters are never updated from a
    non-finite loss; the checkpoints written so far (``last.ckpt`` of the last finished epoch)
    stay as they were.
    """

    def __init__(self, max_loss_growth: float = 1e4) -> None:
        if not max_loss_growth > 1:
            raise ValueError(
                f"callbacks.finite_guard.max_loss_growth={max_loss_growth} is invalid: it must "
                "be > 1."
            )
        self.max_loss_growth = float(max_loss_growth)
        self.first_loss: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_loss = None

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: Tensor):
        if bool(torch.isfinite(loss)):
            self._check_growth(trainer, pl_module, float(loss.detach()))
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

    def _check_growth(self, trainer: L.Trainer, pl_module: L.LightningModule, value: float) -> None:
        """A finite loss that grew ``max_loss_growth``-fold over the first step's is divergence."""
        if self.first_loss is None:
            self.first_loss = max(abs(value), 1e-8)
            return
        if value > self.max_loss_growth * self.first_loss:
            raise DivergedLossError(
                f"training diverged: the loss is {value:.3g} at epoch {trainer.current_epoch}, "
                f"global step {trainer.global_step}, {value / self.first_loss:.3g} times its "
                f"first value ({self.first_loss:.3g}); stopped before the optimiser step. Lower "
                f"model.lr (now {_learning_rate(pl_module)})."
            )


def _learning_rate(pl_module: L.LightningModule) -> object:
    """The learning rate in use (``model.lr`` resolved), or the configured value."""
    return getattr(pl_module, "learning_rate", pl_module.hparams.get("lr"))
