"""The pair objective of P2: a generalised logistic loss around the threshold b."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def pair_loss(distances: Tensor, threshold: Tensor, is_positive: bool, beta: float) -> Tensor:
    """``(1/β) log(1 + exp(β t (D − b)))`` with t = +1 for positive pairs, −1 for negatives."""
    sign = 1.0 if is_positive else -1.0
    return F.softplus(beta * sign * (distances - threshold)) / beta


def metric_objective(
    positive_distances: Tensor,
    negative_distances: Tensor,
    threshold: Tensor,
    attribute_error: Tensor,
    beta: float,
    negative_weight: float,
    attribute_weight: float,
) -> dict[str, Tensor]:
    """``E = mean_pos ℓ + w_neg · mean_neg ℓ + λ · mean_pos ‖Wᵀx − a_y‖²``.

    The weight decay μ(‖W‖² + ‖L‖²) is applied by the optimiser. Returns the total ``loss`` and
    its parts, for logging.
    """
    positive = pair_loss(positive_distances, threshold, True, beta).mean()
    negative = pair_loss(negative_distances, threshold, False, beta).mean()
    attribute = attribute_error.mean()
    loss = positive + negative_weight * negative + attribute_weight * attribute
    return {"loss": loss, "loss_pos": positive, "loss_neg": negative, "loss_att": attribute}
