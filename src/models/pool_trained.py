"""The shared part of the two trained systems (the metric, the compatibility objectives): what
every model trained on the negative pool does the same way.

Initialisation from the training images at ``fit`` (a checkpoint restored after ``setup``
overwrites it), the epoch means of the training log, the learning rate's default by
initialisation, weight decay towards the initialisation (``model.weight_decay_to=init``) or
Adam's own (``zero``), and β for ``loss_weighted``. A subclass declares what differs:
:meth:`initialise_from`, :meth:`auto_lr`, :meth:`decayed_parameters` and
:meth:`undecayed_parameters`; its loss is its ``training_step``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.models.classifier import ZSLClassifier
from src.models.epoch_means import EpochMeans


class PoolTrainedSystem(ZSLClassifier):
    """A model trained on (image, positive, pool negatives) batches; see the module."""

    _epoch_means: EpochMeans  # the subclass's logged names (set in its __init__)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":  # a checkpoint restored after setup overwrites this initialisation
            dm = self.trainer.datamodule
            self.initialise_from(dm.train_features, dm.train_labels)

    def initialise_from(self, features: Tensor, labels: Tensor) -> None:
        """Set the weights from the training images and their labels (and keep the start)."""
        raise NotImplementedError

    def auto_lr(self) -> float:
        """The learning rate when ``model.lr`` is null (by initialisation)."""
        raise NotImplementedError

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        """(parameter, its starting value) of every parameter under weight decay."""
        raise NotImplementedError

    def undecayed_parameters(self) -> list[torch.nn.Parameter]:
        """The trained parameters without weight decay (e.g. a threshold)."""
        return []

    # ------------------------------------------------------------------------ training
    def on_train_epoch_start(self) -> None:
        self._epoch_means.reset()

    def on_train_epoch_end(self) -> None:
        """The training log's values: means over the epoch's images."""
        if means := self._epoch_means.means():
            self.log_dict(means, on_epoch=True)

    @property
    def learning_rate(self) -> float:
        """``model.lr``, or its default by initialisation when null (:meth:`auto_lr`)."""
        if self.hparams.lr is not None:
            return float(self.hparams.lr)
        return self.auto_lr()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Weight decay towards the initialisation: ``grad += μ (θ − θ_init)``."""
        mu = self.hparams.weight_decay
        if self.hparams.weight_decay_to != "init" or mu == 0:
            return
        for param, start in self.decayed_parameters():
            if param.grad is not None:
                param.grad.add_(param.detach() - start, alpha=mu)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # weight_decay_to=zero: Adam's own (coupled) L2; init: on_before_optimizer_step.
        plain_decay = self.hparams.weight_decay if self.hparams.weight_decay_to == "zero" else 0.0
        groups = [
            {"params": [p for p, _ in self.decayed_parameters()], "weight_decay": plain_decay}
        ]
        if undecayed := self.undecayed_parameters():
            groups.append({"params": undecayed, "weight_decay": 0.0})
        return torch.optim.Adam(groups, lr=self.learning_rate)

    @property
    def mining_beta(self) -> float:
        """β of the pair loss, read by ``loss_weighted``."""
        return float(self.hparams.beta)
