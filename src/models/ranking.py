"""The ranking losses of the GBU classics, on compatibilities F of a positive and K negatives.

Every loss takes ``positive`` (n: F(x, y) of each image with its own class), ``negatives``
(n × K: F(x, j) of its pool classes) and the margin Δ (Δ(y, j) = Δ for j ≠ y, the 0/1 loss
scaled by Δ), and returns one loss per image; the loss classes of :mod:`src.models.losses`
average them.

- DeViSE (Frome et al. 2013), hinge rank loss: ``Σ_j max(0, Δ − F(x, y) + F(x, j))``.
- SJE (Akata et al. 2015), structured max-margin: ``max(0, max_j (Δ + F(x, j)) − F(x, y))``.
- ALE (Akata et al., TPAMI 2016), weighted approximate-rank pairwise loss (WARP):
  ``(β_r / r) Σ_j max(0, Δ + F(x, j) − F(x, y))`` with r the rank of the true class (the number
  of classes that violate the margin) and ``β_r = Σ_{i=1..r} 1/i``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def hinge_terms(positive: Tensor, negatives: Tensor, margin: float) -> Tensor:
    """``max(0, Δ + F(x, j) − F(x, y))`` of every pool negative (n × K)."""
    return (margin + negatives - positive[:, None]).clamp_min(0.0)


def devise_loss(positive: Tensor, negatives: Tensor, margin: float) -> Tensor:
    """DeViSE's hinge rank loss per image (n): the sum of the K hinge terms."""
    return hinge_terms(positive, negatives, margin).sum(1)


def sje_loss(positive: Tensor, negatives: Tensor, margin: float) -> Tensor:
    """SJE's structured max-margin loss per image (n): the most violating negative only."""
    return ((margin + negatives).amax(1) - positive).clamp_min(0.0)


def estimated_ranks(violators: Tensor, num_negatives: int, num_candidates: int) -> Tensor:
    """The rank r of the true class among ``num_candidates`` classes from the ``violators``
    counted among the K pool negatives (long, n).

    With every other class in the pool (K = ``num_candidates``) the count is the rank itself.
    Otherwise it is scaled to the candidates, ``⌊violators × num_candidates / K⌋`` (unbiased
    when the K are drawn uniformly; under a mined pool, which holds the hardest classes, it
    overstates the rank), and at least 1 when any negative violates.
    """
    if num_negatives >= num_candidates:
        return violators
    scaled = torch.div(violators * num_candidates, num_negatives, rounding_mode="floor")
    return torch.where(violators > 0, scaled.clamp_min(1), scaled)


def rank_weights(ranks: Tensor, max_rank: int) -> Tensor:
    """``β_r / r`` with ``β_r = Σ_{i=1..r} 1/i`` (the harmonic number), 0 where r = 0 (n)."""
    steps = torch.arange(1, max(max_rank, 1) + 1, dtype=torch.float64, device=ranks.device)
    harmonic = torch.cat([steps.new_zeros(1), (1.0 / steps).cumsum(0)])  # β_0 … β_max
    ranks = ranks.clamp(0, max(max_rank, 1))
    return harmonic[ranks] / ranks.clamp_min(1)


def ale_loss(positive: Tensor, negatives: Tensor, margin: float, num_candidates: int) -> Tensor:
    """ALE's WARP loss per image (n); ``num_candidates``: the other seen classes (S − 1)."""
    terms = hinge_terms(positive, negatives, margin)
    violators = (terms > 0).sum(1)  # a negative violates when its hinge is positive
    ranks = estimated_ranks(violators, negatives.shape[1], num_candidates)
    weights = rank_weights(ranks, num_candidates).to(terms.dtype)
    return weights * terms.sum(1)
