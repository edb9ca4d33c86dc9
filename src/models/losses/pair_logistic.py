"""P2's pair loss as a :class:`~src.models.losses.base.PoolLoss` (``model/loss=pair_logistic``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from src.core.checks import is_number
from src.models.losses.base import PoolLoss, ScoredBatch, check_value
from src.models.objective import metric_objective


class PairLogisticLoss(PoolLoss):
    """P2's objective: ``mean_pos ℓ + w_neg · mean_neg ℓ + λ · mean_pos ‖Wᵀx − a_y‖²`` with
    ``ℓ = (1/β) log(1 + exp(β t (D − b)))`` around the scorer's learned threshold b.

    Args:
        beta: β, sharpness of the pair loss (and of ``miner=loss_weighted``).
        attribute_weight: λ, weight of the attribute-prediction term.
        negative_weight: w_neg, weight of the negative-pair term.
    """

    parts = ("loss", "loss_pos", "loss_neg", "loss_att")
    needs_threshold = True

    def __init__(
        self, beta: float = 1.0, attribute_weight: float = 0.1, negative_weight: float = 1.0
    ) -> None:
        super().__init__()
        check_value("beta", beta, is_number(beta) and beta > 0, "> 0")
        for key, value in (("attribute_weight", attribute_weight),
                           ("negative_weight", negative_weight)):  # fmt: skip
            check_value(key, value, is_number(value) and value >= 0, "≥ 0")
        self.beta, self.attribute_weight = beta, attribute_weight
        self.negative_weight = negative_weight

    def forward(self, batch: ScoredBatch) -> dict[str, Tensor]:
        attribute_error = (batch.embedded - batch.targets).square().sum(-1)
        return metric_objective(
            batch.positive,
            batch.negatives,
            batch.threshold,
            attribute_error,
            beta=self.beta,
            negative_weight=self.negative_weight,
            attribute_weight=self.attribute_weight,
        )

    def thresholds(
        self, distances: Tensor, positives: Tensor, learned: Tensor | None
    ) -> float | Tensor:
        """b, the same for every pair."""
        return float(learned.detach())

    @property
    def mining_beta(self) -> float:
        return float(self.beta)

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        return {
            "model.attribute_weight": trial.suggest_float("attribute_weight", 1e-3, 1.0, log=True)
        }

    @staticmethod
    def default_params(model_cfg: Mapping) -> dict[str, Any]:
        return {"attribute_weight": float(model_cfg["attribute_weight"])}
