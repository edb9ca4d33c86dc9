"""The bilinear compatibility of ALE, DeViSE and SJE: ``F(x, a) = xᵀ W a``, distance ``−F``.

The math only (the losses are in :mod:`src.models.ranking`, the training in
:mod:`src.models.compatibility_system`). It is a :class:`~src.mining.scorer.PairScorer`, so
the negative pool mines with it as it does with the metric: distances are ``−F`` (smaller =
more compatible = a harder negative), and a negative is on the wrong side when it violates
the margin of the ranking losses, ``F(x, j) > F(x, y) − Δ``, i.e. ``−F(x, j) < −F(x, y) + Δ``.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn


class BilinearCompatibility(nn.Module):
    """``F(x, a) = xᵀ W a`` with ``W ∈ R^{d×k}``.

    Args:
        feature_dim: d, the image feature dimension.
        signature_dim: k, the class signature dimension.
        margin: Δ, the margin the ranking losses demand (the pool's threshold, see
            :meth:`thresholds`).

    Example:
        >>> model = BilinearCompatibility(feature_dim=4, signature_dim=3)
        >>> model.compatibilities(torch.randn(5, 4), torch.randn(2, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(self, feature_dim: int, signature_dim: int, margin: float = 1.0) -> None:
        super().__init__()
        self.feature_dim, self.signature_dim, self.margin = feature_dim, signature_dim, margin
        self.W = nn.Parameter(torch.zeros(feature_dim, signature_dim))

    def compatibilities(self, features: Tensor, signatures: Tensor) -> Tensor:
        """All-pairs F (N × C)."""
        return (features @ self.W) @ signatures.T

    def scored_chunks(
        self, features: Tensor, signatures: Tensor, rows: int
    ) -> Iterator[tuple[int, Tensor]]:
        """All-pairs distances ``−F`` of ``rows`` images at a time: ``(first row, −F)``.

        ``W Aᵀ`` (d × C) is computed once, so an image costs one d × C product; each chunk of
        ``features`` (which may live on the host) is moved to W's device.
        """
        projection = self.W @ signatures.T
        for start in range(0, len(features), rows):
            chunk = features[start : start + rows].to(projection.device, non_blocking=True)
            yield start, -(chunk @ projection)

    def thresholds(self, distances: Tensor, positives: Tensor) -> Tensor:
        """``−F(x, y) + Δ`` per image (n × 1): the negatives below it violate the margin."""
        return distances.gather(1, positives[:, None]) + self.margin

    def distances(self, features: Tensor, signatures: Tensor, chunk_size: int = 65536) -> Tensor:
        """All-pairs ``−F`` (N × C), computed in chunks of ``chunk_size`` images."""
        return torch.cat([d for _, d in self.scored_chunks(features, signatures, chunk_size)])

    def image_major(
        self, features: Tensor, signatures: Tensor, positives: Tensor, negatives: Tensor
    ) -> tuple[Tensor, Tensor]:
        """F of a training batch's images with their own class (n) and their K negatives
        (n × K), from one product with every dataset class's signature (C × k)."""
        scores = self.compatibilities(features, signatures)
        return scores.gather(1, positives[:, None]).squeeze(1), scores.gather(1, negatives)
