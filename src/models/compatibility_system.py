"""The LightningModule of the bilinear compatibility scorer ``F(x, a) = xᵀ W a`` (distance
``−F``), trained with any loss: ALE, DeViSE and SJE are its ranking losses
(:mod:`src.models.losses`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from src.core.checks import is_number
from src.models.compatibility import BilinearCompatibility
from src.models.losses import ALELoss, DeViSELoss, PoolLoss, ScoredBatch, SJELoss
from src.models.losses.base import check_value
from src.models.metric import identity_scale, ridge_map
from src.models.pool_trained import PoolTrainedSystem, check_shared_values, loss_spec
from src.models.system import AUTO_LR

INITS = ("auto", "ridge", "identity", "random")
#: model.lr=null: Adam's learning rate by initialisation (as the metric's, :data:`AUTO_LR`)
COMPATIBILITY_AUTO_LR = {**AUTO_LR, "random": 1e-3}
#: the losses of checkpoints saved before losses were classes (hparams ``objective``)
OBJECTIVE_LOSSES = {"ale": ALELoss, "devise": DeViSELoss, "sje": SJELoss}


class CompatibilityZSLSystem(PoolTrainedSystem):
    """``model=ale|devise|sje``: ``F(x, a) = xᵀ W a`` trained with a loss (their ranking losses
    by default), Adam and the framework's negative pool (distance = −F).

    The pool's K classes of an image are its negatives (``miner=all``: every other seen class,
    the published methods; any strategy otherwise: mined or random negatives). Signatures and
    the seen classes come from the datamodule at ``setup``.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        loss: the loss's config (``{_target_: …}``, its class or dotted path; default
            :class:`~src.models.losses.ALELoss`): ALE (WARP), DeViSE (hinge rank), SJE
            (structured max-margin) or any other :class:`~src.models.losses.PoolLoss` (the
            pair loss adds a learned threshold b to the scorer).
        lr: Adam learning rate; ``None``: by initialisation (:data:`COMPATIBILITY_AUTO_LR`).
        weight_decay: μ, applied to W.
        weight_decay_to: ``init`` pulls W towards its initialisation, ``zero`` towards 0 (both
            add ``μ (W − W_target)`` to the gradient).
        ridge: ridge penalty of the ridge initialisation.
        init: ``ridge`` (W regresses features onto signatures, so that F starts as the dot
            product of predicted and class signatures), ``identity`` (W = s·I, d = k),
            ``random`` (W ~ N(0, init_std²)), or ``auto``: identity when the datamodule's
            features are signature-space vectors, else ridge.
        init_std: standard deviation of the random initialisation.
        calibration_gamma: γ of the calibrated GZSL metrics; ``None``: chosen on validation.
        gamma_grid: candidate γ for that choice; ``None``: the exact best γ.
        loss_params: the loss's own parameters, flat keys of the model's config (a ranking
            loss's margin Δ and the β of ``miner=loss_weighted``; see :mod:`src.models.losses`).
    """

    AUTO_LR = COMPATIBILITY_AUTO_LR
    DEFAULT_LOSS = ALELoss

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        loss: Mapping | type[PoolLoss] | str | None = None,
        lr: float | None = None,
        weight_decay: float = 1e-4,
        weight_decay_to: str = "init",
        ridge: float = 1.0,
        init: str = "auto",
        init_std: float = 0.01,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
        **loss_params: Any,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        if loss is None and "objective" in loss_params:  # a checkpoint of an earlier version
            objective = loss_params.pop("objective")
            loss = OBJECTIVE_LOSSES.get(objective, f"objective={objective}")
        loss = loss_spec(loss, self.DEFAULT_LOSS)  # plain, as the checkpoint's hparams keep it
        check_shared_values(
            feature_dim, signature_dim, INITS, lr, weight_decay, weight_decay_to, ridge, init
        )
        check_value("init_std", init_std, is_number(init_std) and init_std > 0, "> 0")
        self.save_hyperparameters(logger=False)  # the job logs its whole config
        self.set_loss(loss, loss_params)
        self.compatibility = BilinearCompatibility(
            feature_dim, signature_dim, threshold=self.loss.needs_threshold
        )
        # Where weight decay pulls W (weight_decay_to=init); saved in checkpoints.
        self.register_buffer("W_init", torch.zeros(feature_dim, signature_dim))

    # ------------------------------------------------------------------ initialisation
    @torch.no_grad()
    def initialise_from(self, features: Tensor, labels: Tensor) -> None:
        """W by :attr:`init_kind` from the training images and their classes' signatures."""
        targets = self.signatures.cpu()[labels.cpu()]
        kind, W = self.init_kind(), self.compatibility.W
        if kind == "identity":
            W.copy_(identity_scale(features.cpu(), targets) * torch.eye(len(W)))
        elif kind == "ridge":
            W.copy_(ridge_map(features.cpu(), targets, self.hparams.ridge).to(W.dtype))
        else:  # random, from the run's seeded generator
            W.copy_(torch.randn(W.shape) * self.hparams.init_std)
        if self.compatibility.b is not None:  # the loss's threshold: between pairs, as P2's
            wrong = self.signatures.cpu()[self.wrong_classes(labels)]
            self.compatibility.initialise_threshold(features.cpu(), targets, wrong)
        if self.hparams.weight_decay_to == "init":
            self.W_init.copy_(W.detach())

    # ------------------------------------------------------------------------ training
    @property
    def scorer(self) -> BilinearCompatibility:
        return self.compatibility

    def scored_batch(self, features: Tensor, labels: Tensor, negatives: Tensor) -> ScoredBatch:
        """``−F`` of each image to its class and its pool negatives, from one product with
        every dataset class's signature."""
        embedded, positive, negative = self.compatibility.image_major(
            features, self.signatures, labels, negatives
        )
        return ScoredBatch(
            -positive,
            -negative,
            embedded,
            self.signatures[labels],
            self.compatibility.b,
            len(self.seen_classes) - 1,
        )

    def auto_lr(self) -> float:
        return COMPATIBILITY_AUTO_LR[self.init_kind()]

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        return [(self.compatibility.W, self.W_init)]

    def undecayed_parameters(self) -> list[torch.nn.Parameter]:
        b = self.compatibility.b
        return [] if b is None else [b]  # the pair loss's threshold

    @classmethod
    def search_space(cls, trial: Any, signature_dim: int, loss: type[PoolLoss]) -> dict:
        """μ, then the loss's parameters (a ranking loss: the margin Δ)."""
        values = {"model.weight_decay": trial.suggest_float("weight_decay", 1e-6, 1.0, log=True)}
        return {**values, **loss.search_space(trial)}

    @classmethod
    def default_params(
        cls, model_cfg: Mapping, signature_dim: int, loss: type[PoolLoss]
    ) -> dict[str, Any]:
        params = {"weight_decay": float(min(max(model_cfg["weight_decay"], 1e-6), 1.0))}
        return {**params, **loss.default_params(model_cfg)}

    # ------------------------------------------------------------------ evaluation

    def class_distances(self, features: Tensor) -> Tensor:
        """``−F`` of every image to every class of the dataset (N × C)."""
        return self.compatibility.distances(features, self.signatures)

    def exact_distances(self, features: Tensor) -> Tensor:
        """``−F`` in float64 from the image embeddings ``x W`` (the training precision) and
        the float64 signatures (see :meth:`ZSLClassifier.exact_distances`)."""
        weights = self.compatibility.W
        with torch.autocast(features.device.type, enabled=False):
            embedded = (features.to(weights.dtype) @ weights).double()
            return -(embedded @ self.exact_class_signatures().T)
