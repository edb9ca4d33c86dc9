"""The LightningModule of the metric scorer: ``D(x, a) = ‖L(Wᵀx − a)‖²`` and its threshold b,
trained with any loss (P2's pair loss by default, :mod:`src.models.losses`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from src.models.losses import PairLogisticLoss, PoolLoss, ScoredBatch
from src.models.metric import BilinearMetric
from src.models.pool_trained import PoolTrainedSystem, check_shared_values, loss_spec

INITS = ("auto", "ridge", "identity")
#: model.lr=null: Adam's learning rate by initialisation, chosen on validation (README, "Defaults
#: on real data"): W = I on L2-normalised attribute vectors moves every entry of a d × d map at
#: once, and 1e-3 drifts away from the nearest-signature ranking within one epoch on many-class
#: data (SUN-sized), where 1e-4 improves on it.
AUTO_LR = {"identity": 1e-4, "ridge": 1e-3}


class MetricZSLSystem(PoolTrainedSystem):
    """Trains a :class:`BilinearMetric` with a loss on positive pairs and pool negatives.

    The negative pool (``negative_pool``: image index → K dataset classes) is written by the
    :class:`~src.callbacks.NegativePoolRefresh` callback; signatures and the seen/unseen classes
    come from the datamodule at ``setup``.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        loss: the loss's config (``{_target_: …}``, its class or dotted path; default
            :class:`~src.models.losses.PairLogisticLoss`), see :mod:`src.models.losses`.
        rank: r, rank of the metric; ``null`` for r = k.
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
        loss_params: the loss's own parameters, flat keys of the model's config (the pair
            loss's ``beta``, ``attribute_weight``, ``negative_weight``; a ranking loss's
            ``margin``, ``beta``).
    """

    AUTO_LR = AUTO_LR
    DEFAULT_LOSS = PairLogisticLoss

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        loss: Mapping | type[PoolLoss] | str | None = None,
        rank: int | None = None,
        lr: float | None = 1e-3,
        weight_decay: float = 1e-4,
        weight_decay_to: str = "init",
        ridge: float = 1.0,
        init: str = "auto",
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
        **loss_params: Any,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        loss = loss_spec(loss, self.DEFAULT_LOSS)  # plain, as the checkpoint's hparams keep it
        check_shared_values(
            feature_dim, signature_dim, INITS, lr, weight_decay, weight_decay_to, ridge, init
        )
        self.save_hyperparameters(logger=False)  # the job logs its whole config
        self.set_loss(loss, loss_params)
        self.metric = BilinearMetric(feature_dim, signature_dim, rank)
        # Where weight decay pulls W and L (weight_decay_to=init); saved in checkpoints.
        self.register_buffer("W_init", torch.zeros(feature_dim, signature_dim))
        self.register_buffer("L_init", torch.zeros_like(self.metric.L))

    def initialise_from(self, features: Tensor, labels: Tensor) -> None:
        """Initialise W (ridge or identity), reset L, set b between positives and negatives."""
        negatives = self.wrong_classes(labels)
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
        return self.init_kind() == "identity"

    @property
    def scorer(self) -> BilinearMetric:
        return self.metric

    def scored_batch(self, features: Tensor, labels: Tensor, negatives: Tensor) -> ScoredBatch:
        """D of each image to its class and its pool negatives, each image projected once."""
        positive_d, negative_d, embedded = self.metric.image_major(
            features, self.signatures, labels, negatives
        )
        return ScoredBatch(
            positive_d,
            negative_d,
            embedded,
            self.signatures[labels],
            self.metric.b,
            len(self.seen_classes) - 1,
        )

    def auto_lr(self) -> float:
        """:data:`AUTO_LR` by initialisation."""
        return AUTO_LR["identity" if self.uses_identity_init() else "ridge"]

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        return [(self.metric.W, self.W_init), (self.metric.L, self.L_init)]

    def undecayed_parameters(self) -> list[torch.nn.Parameter]:
        return [self.metric.b]  # the threshold

    @classmethod
    def search_space(cls, trial: Any, signature_dim: int, loss: type[PoolLoss]) -> dict:
        """The loss's parameters (the pair loss: λ), then μ and the rank r."""
        ranks = sorted({max(1, signature_dim // 4), max(1, signature_dim // 2), signature_dim})
        values = loss.search_space(trial)
        values["model.weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1.0, log=True)
        values["model.rank"] = trial.suggest_categorical("rank", ranks)
        return values

    @classmethod
    def default_params(
        cls, model_cfg: Mapping, signature_dim: int, loss: type[PoolLoss]
    ) -> dict[str, Any]:
        params = loss.default_params(model_cfg)
        params["weight_decay"] = float(min(max(model_cfg["weight_decay"], 1e-6), 1.0))
        rank = model_cfg["rank"]
        params["rank"] = signature_dim if rank is None else int(rank)
        return params

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
