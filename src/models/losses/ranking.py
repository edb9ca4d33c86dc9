"""The GBU classics' ranking losses as :class:`~src.models.losses.base.PoolLoss` classes
(``model/loss=ale|devise|sje``): the shared margin, wrong side and search in
:class:`RankingLoss`; each loss fills in :meth:`RankingLoss.per_image` from
:mod:`src.models.ranking`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from src.core.checks import is_number
from src.models.losses.base import PoolLoss, ScoredBatch, check_value
from src.models.ranking import ale_loss, devise_loss, sje_loss


class RankingLoss(PoolLoss):
    """A ranking loss of the GBU classics on ``F = −distance``, margin Δ (Δ(y, j) = Δ, j ≠ y).

    Subclasses define :meth:`per_image`. Logged: the mean ``loss`` and ``violators``, the share
    of pool negatives inside the margin.

    Args:
        margin: Δ.
        beta: β of ``miner=loss_weighted``, which draws negatives with
            ``p ∝ softplus(β (Δ + F(x, j) − F(x, y)))``, a smoothed hinge term.

    Example:
        >>> import torch
        >>> # one image at distance 0 from its class, its two negatives at 0.5 and 2.0
        >>> batch = ScoredBatch(torch.tensor([0.0]), torch.tensor([[0.5, 2.0]]), None, None,
        ...                     None, num_candidates=2)
        >>> parts = SJELoss(margin=1.0)(batch)  # max_j (Δ + F(x, j)) − F(x, y) = 1 − 0.5 − 0
        >>> float(parts["loss"]), float(parts["violators"])  # one of two inside the margin
        (0.5, 0.5)
    """

    parts = ("loss", "violators")

    def __init__(self, margin: float = 1.0, beta: float = 1.0) -> None:
        super().__init__()
        check_value("margin", margin, is_number(margin) and margin > 0, "a number > 0")
        check_value("beta", beta, is_number(beta) and beta > 0, "> 0")
        self.margin, self.beta = float(margin), beta

    def per_image(self, positive: Tensor, negatives: Tensor, num_candidates: int) -> Tensor:
        """The loss of each image (n) from F of its class (n) and of its negatives (n × K)."""
        raise NotImplementedError

    def forward(self, batch: ScoredBatch) -> dict[str, Tensor]:
        positive, negatives = -batch.positive, -batch.negatives  # F = −distance (exact)
        losses = self.per_image(positive, negatives, batch.num_candidates)
        violators = (self.margin + negatives.detach() - positive.detach()[:, None] > 0).float()
        return {"loss": losses.mean(), "violators": violators.mean()}

    def thresholds(
        self, distances: Tensor, positives: Tensor, learned: Tensor | None
    ) -> float | Tensor:
        """``−F(x, y) + Δ`` per image (n × 1): the negatives below it violate the margin."""
        return distances.gather(1, positives[:, None]) + self.margin

    @property
    def mining_beta(self) -> float:
        return float(self.beta)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {"model.margin": trial.suggest_float("margin", 0.1, 10.0, log=True)}

    @staticmethod
    def default_params(model_cfg: Mapping) -> dict[str, Any]:
        return {"margin": float(min(max(model_cfg["margin"], 0.1), 10.0))}


class ALELoss(RankingLoss):
    """ALE's weighted approximate-rank pairwise loss (WARP,
    :func:`~src.models.ranking.ale_loss`)."""

    def per_image(self, positive: Tensor, negatives: Tensor, num_candidates: int) -> Tensor:
        return ale_loss(positive, negatives, self.margin, num_candidates)


class DeViSELoss(RankingLoss):
    """DeViSE's hinge rank loss (:func:`~src.models.ranking.devise_loss`)."""

    def per_image(self, positive: Tensor, negatives: Tensor, num_candidates: int) -> Tensor:
        return devise_loss(positive, negatives, self.margin)


class SJELoss(RankingLoss):
    """SJE's structured max-margin loss (:func:`~src.models.ranking.sje_loss`)."""

    def per_image(self, positive: Tensor, negatives: Tensor, num_candidates: int) -> Tensor:
        return sje_loss(positive, negatives, self.margin)
