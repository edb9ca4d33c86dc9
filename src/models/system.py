"""The LightningModule that trains the metric: objective, optimiser and logging."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from src.models.epoch_means import EpochMeans
from src.models.metric import BilinearMetric
from src.models.objective import metric_objective
from src.models.pool_trained import PoolTrainedSystem

INITS = ("auto", "ridge", "identity")
DECAY_TARGETS = ("init", "zero")
#: model.lr=null: Adam's learning rate by initialisation, chosen on validation (README, "Defaults
#: on real data"): W = I on L2-normalised attribute vectors moves every entry of a d × d map at
#: once, and 1e-3 drifts away from the nearest-signature ranking within one epoch on many-class
#: data (SUN-sized), where 1e-4 improves on it.
AUTO_LR = {"identity": 1e-4, "ridge": 1e-3}
#: the parts of :func:`metric_objective` logged as ``train/<part>``
LOSS_PARTS = ("loss", "loss_pos", "loss_neg", "loss_att")


class MetricZSLSystem(PoolTrainedSystem):
    """Trains a :class:`BilinearMetric` on positive pairs and pool negatives.

    The negative pool (``negative_pool``: image index → K dataset classes) is written by the
    :class:`~src.callbacks.NegativePoolRefresh` callback; signatures and the seen/unseen classes
    come from the datamodule at ``setup``.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        rank: r, rank of the metric; ``null`` for r = k.
        beta: β, sharpness of the generalised logistic loss.
        attribute_weight: λ, weight of the attribute-prediction term.
        negative_weight: w_neg, weight of the negative-pair term.
        lr: Adam learning rate; ``None``: by initialisation (:data:`AUTO_LR`).
        weight_decay: μ, applied to W and L (not to b).
        weight_decay_to: ``init`` pulls W and L towards their initialisation (the ridge map or
            the identity: the untrained metric is the prior), ``zero`` towards 0 (plain L2);
            both add ``μ (θ − θ_target)`` to the gradient, as Adam's own weight decay does.
        ridge: ridge penalty of W's initialisation.
        init: ``ridge`` (W regresses features onto signatures), ``identity`` (W = I, for
            features that already live in the signature space, d = k) or ``auto``: identity
            when the datamodule says its features are signature-space vectors
            (``features_in_signature_space``, e.g. the APY annotations), else ridge.
        calibration_gamma: γ of the calibrated GZSL metrics; ``None``: chosen on validation
            (see :class:`~src.models.classifier.ZSLClassifier`).
        gamma_grid: candidate γ for that choice; ``None``: the exact best γ.
    """

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        rank: int | None = None,
        beta: float = 1.0,
        attribute_weight: float = 0.1,
        negative_weight: float = 1.0,
        lr: float | None = 1e-3,
        weight_decay: float = 1e-4,
        weight_decay_to: str = "init",
        ridge: float = 1.0,
        init: str = "auto",
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        for key, value, ok, allowed in (
            ("model.beta", beta, beta > 0, "> 0"),
            ("model.attribute_weight", attribute_weight, attribute_weight >= 0, "≥ 0"),
            ("model.negative_weight", negative_weight, negative_weight >= 0, "≥ 0"),
            ("model.lr", lr, lr is None or lr > 0, "> 0, or null for the default by init"),
            (
                "model.weight_decay_to",
                weight_decay_to,
                weight_decay_to in DECAY_TARGETS,
                f"one of {DECAY_TARGETS}",
            ),
            ("model.weight_decay", weight_decay, weight_decay >= 0, "≥ 0"),
            ("model.ridge", ridge, ridge >= 0, "≥ 0"),
            ("model.init", init, init in INITS, f"one of {INITS}"),
        ):
            if not ok:
                raise ValueError(f"{key}={value} is invalid: it must be {allowed}.")
        self.save_hyperparameters(logger=False)  # the job logs its whole config
        self.metric = BilinearMetric(feature_dim, signature_dim, rank)
        if init == "identity" and feature_dim != signature_dim:
            raise ValueError(
                f"model.init=identity needs feature_dim == signature_dim, but the data has "
                f"feature_dim={feature_dim}, signature_dim={signature_dim}: use model.init=ridge."
            )
        self.negative_pool: Tensor | None = None
        self._epoch_means = EpochMeans([f"train/{name}" for name in (*LOSS_PARTS, "threshold")])
        # Where weight decay pulls W and L (weight_decay_to=init); saved in checkpoints.
        self.register_buffer("W_init", torch.zeros(feature_dim, signature_dim))
        self.register_buffer("L_init", torch.zeros_like(self.metric.L))

    def initialise_from(self, features: Tensor, labels: Tensor) -> None:
        """Initialise W (ridge or identity), reset L, set b between positives and negatives."""
        generator = torch.Generator().manual_seed(0)
        seen = self.seen_classes.cpu()
        offset = torch.randint(1, len(seen), (len(labels),), generator=generator)
        local = torch.searchsorted(seen, labels)
        negatives = seen[(local + offset) % len(seen)]
        self.metric.initialise(
            features,
            self.signatures.cpu()[labels],
            ridge=None if self.uses_identity_init() else self.hparams.ridge,
            negative_signatures=self.signatures.cpu()[negatives],
        )
        if self.hparams.weight_decay_to == "init":
            self.W_init.copy_(self.metric.W.detach())
            self.L_init.copy_(self.metric.L.detach())

    def uses_identity_init(self) -> bool:
        init = self.hparams.init
        if init == "auto":
            datamodule = self._trainer.datamodule if self._trainer is not None else None
            return datamodule is not None and datamodule.features_in_signature_space
        return init == "identity"

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.negative_pool is None:
            raise RuntimeError(
                "No negative pool: add the NegativePoolRefresh callback (callbacks.negative_pool)."
            )
        features, labels = batch["features"], batch["labels"]
        negatives = self.negative_pool[batch["index"]]
        positive_d, negative_d, embedded = self.metric.image_major(
            features, self.signatures, labels, negatives
        )
        attribute_error = (embedded - self.signatures[labels]).square().sum(-1)
        parts = metric_objective(
            positive_d,
            negative_d,
            self.metric.b,
            attribute_error,
            beta=self.hparams.beta,
            negative_weight=self.hparams.negative_weight,
            attribute_weight=self.hparams.attribute_weight,
        )
        # Summed on the device and logged once per epoch (on_train_epoch_end): a Lightning
        # log call per value and step costs more than this step's arithmetic on small batches.
        values = torch.stack([*(parts[name] for name in LOSS_PARTS), self.metric.b]).detach()
        self._epoch_means.add(values, len(labels))
        return parts["loss"]

    def auto_lr(self) -> float:
        """:data:`AUTO_LR` by initialisation."""
        return AUTO_LR["identity" if self.uses_identity_init() else "ridge"]

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        return [(self.metric.W, self.W_init), (self.metric.L, self.L_init)]

    def undecayed_parameters(self) -> list[torch.nn.Parameter]:
        return [self.metric.b]  # the threshold

    def pool_scorer(self) -> BilinearMetric:
        """The pool mines with the metric's D and threshold b (:class:`~src.mining.scorer.
        PoolTrainedModel`)."""
        return self.metric

    def class_distances(self, features: Tensor) -> Tensor:
        """D of every image to every class of the dataset (N × C)."""
        return self.metric.distances(features, self.signatures)

    def exact_distances(self, features: Tensor) -> Tensor:
        """D in float64 from the image projections ``x W Lᵀ`` (the training precision) and the
        float64 class projections ``A Lᵀ`` (see :meth:`ZSLClassifier.exact_distances`)."""
        metric = self.metric
        with torch.autocast(features.device.type, enabled=False):
            image_proj = features.to(metric.W.dtype) @ (metric.W @ metric.L.T)
            class_proj = self.exact_class_signatures() @ metric.L.double().T
            return metric.distances_from_projections(image_proj.double(), class_proj)
