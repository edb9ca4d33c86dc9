"""The LightningModule of ALE, DeViSE and SJE: a bilinear compatibility, pool negatives."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from src.models.compatibility import BilinearCompatibility
from src.models.epoch_means import EpochMeans
from src.models.metric import identity_scale, ridge_map
from src.models.pool_trained import PoolTrainedSystem
from src.models.ranking import OBJECTIVES, ranking_objective
from src.models.system import AUTO_LR, DECAY_TARGETS

INITS = ("auto", "ridge", "identity", "random")
#: model.lr=null: Adam's learning rate by initialisation (as the metric's, :data:`AUTO_LR`)
COMPATIBILITY_AUTO_LR = {**AUTO_LR, "random": 1e-3}
#: what is logged as ``train/<part>`` (epoch means over images)
LOSS_PARTS = ("loss", "violators")


class CompatibilityZSLSystem(PoolTrainedSystem):
    """``model=ale|devise|sje``: ``F(x, a) = xᵀ W a`` trained with a ranking loss, Adam and the
    framework's negative pool (distance = −F).

    The pool's K classes of an image are its negatives (``miner=all``: every other seen class,
    the published methods; any strategy otherwise: mined or random negatives). Signatures and
    the seen classes come from the datamodule at ``setup``.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        objective: ``ale`` (WARP), ``devise`` (hinge rank) or ``sje`` (structured max-margin);
            see :mod:`src.models.ranking`.
        margin: Δ of the losses (Δ(y, j) = Δ for every j ≠ y).
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
        beta: β of the ``loss_weighted`` strategy, which draws negatives with p ∝
            softplus(β (Δ + F(x, j) − F(x, y))), a smoothed hinge term.
        calibration_gamma: γ of the calibrated GZSL metrics; ``None``: chosen on validation.
        gamma_grid: candidate γ for that choice; ``None``: the exact best γ.
    """

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        objective: str = "ale",
        margin: float = 1.0,
        lr: float | None = None,
        weight_decay: float = 1e-4,
        weight_decay_to: str = "init",
        ridge: float = 1.0,
        init: str = "auto",
        init_std: float = 0.01,
        beta: float = 1.0,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        for key, value, ok, allowed in (
            ("model.objective", objective, objective in OBJECTIVES, f"one of {OBJECTIVES}"),
            ("model.margin", margin, _number(margin) and margin > 0, "a number > 0"),
            ("model.lr", lr, lr is None or (_number(lr) and lr > 0), "> 0, or null"),
            ("model.weight_decay", weight_decay, _number(weight_decay) and weight_decay >= 0,
             "≥ 0"),
            ("model.weight_decay_to", weight_decay_to, weight_decay_to in DECAY_TARGETS,
             f"one of {DECAY_TARGETS}"),
            ("model.ridge", ridge, _number(ridge) and ridge >= 0, "≥ 0"),
            ("model.init", init, init in INITS, f"one of {INITS}"),
            ("model.init_std", init_std, _number(init_std) and init_std > 0, "> 0"),
            ("model.beta", beta, _number(beta) and beta > 0, "> 0"),
        ):  # fmt: skip
            if not ok:
                shown = repr(value) if isinstance(value, str) else value
                raise ValueError(f"{key}={shown} is invalid: it must be {allowed}.")
        if init == "identity" and feature_dim != signature_dim:
            raise ValueError(
                f"model.init=identity needs feature_dim == signature_dim, but the data has "
                f"feature_dim={feature_dim}, signature_dim={signature_dim}: use model.init=ridge."
            )
        self.save_hyperparameters(logger=False)  # the job logs its whole config
        self.compatibility = BilinearCompatibility(feature_dim, signature_dim, float(margin))
        self.negative_pool: Tensor | None = None
        self._epoch_means = EpochMeans([f"train/{name}" for name in LOSS_PARTS])
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
        if self.hparams.weight_decay_to == "init":
            self.W_init.copy_(W.detach())

    def init_kind(self) -> str:
        """``model.init``, with ``auto`` resolved from the datamodule (identity or ridge)."""
        if self.hparams.init != "auto":
            return self.hparams.init
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        in_space = datamodule is not None and datamodule.features_in_signature_space
        return "identity" if in_space else "ridge"

    # ------------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.negative_pool is None:
            raise RuntimeError(
                "No negative pool: add the NegativePoolRefresh callback (callbacks.negative_pool)."
            )
        labels = batch["labels"]
        positive, negatives = self.compatibility.image_major(
            batch["features"], self.signatures, labels, self.negative_pool[batch["index"]]
        )
        parts = ranking_objective(
            self.hparams.objective,
            positive,
            negatives,
            self.compatibility.margin,
            num_candidates=len(self.seen_classes) - 1,
        )
        # Summed on the device and logged once per epoch, as MetricZSLSystem does.
        values = torch.stack([parts[name] for name in LOSS_PARTS]).detach()
        self._epoch_means.add(values, len(labels))
        return parts["loss"]

    def auto_lr(self) -> float:
        return COMPATIBILITY_AUTO_LR[self.init_kind()]

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        return [(self.compatibility.W, self.W_init)]

    # ------------------------------------------------------------- pool and evaluation
    def pool_scorer(self) -> BilinearCompatibility:
        """The pool mines with ``−F`` and the margin (:class:`~src.mining.scorer.
        PoolTrainedModel`)."""
        return self.compatibility

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


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
