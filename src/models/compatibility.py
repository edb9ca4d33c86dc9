"""The bilinear compatibility of ALE, DeViSE and SJE: ``F(x, a) = xᵀ W a``, distance ``−F``.

The math only (the losses are in :mod:`src.models.losses`, the training in
:mod:`src.models.compatibility_system`). The negative pool mines with its distances ``−F``
(smaller = more compatible = a harder negative) as it does with the metric's; the loss says
where a negative is on the wrong side (a ranking loss: inside its margin,
``−F(x, j) < −F(x, y) + Δ``).
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
        threshold: add a learned threshold ``b`` on ``−F`` (for a loss around a threshold, as
            P2's pair loss); ``b`` is None otherwise.

    Example:
        >>> model = BilinearCompatibility(feature_dim=4, signature_dim=3)
        >>> model.compatibilities(torch.randn(5, 4), torch.randn(2, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(self, feature_dim: int, signature_dim: int, threshold: bool = False) -> None:
        super().__init__()
        self.feature_dim, self.signature_dim = feature_dim, signature_dim
        self.W = nn.Parameter(torch.zeros(feature_dim, signature_dim))
        self.b = nn.Parameter(torch.ones(())) if threshold else None

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

    def distances(self, features: Tensor, signatures: Tensor, chunk_size: int = 65536) -> Tensor:
        """All-pairs ``−F`` (N × C), computed in chunks of ``chunk_size`` images."""
        return torch.cat([d for _, d in self.scored_chunks(features, signatures, chunk_size)])

    def image_major(
        self, features: Tensor, signatures: Tensor, positives: Tensor, negatives: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``(x W (n × k), F with the own class (n), F with the K negatives (n × K))`` of a
        training batch, from one product with every dataset class's signature (C × k)."""
        embedded = features @ self.W
        scores = embedded @ signatures.T
        positive = scores.gather(1, positives[:, None]).squeeze(1)
        return embedded, positive, scores.gather(1, negatives)

    @torch.no_grad()
    def initialise_threshold(
        self, features: Tensor, targets: Tensor, wrong_signatures: Tensor
    ) -> None:
        """b = the median ``−F`` over each image with its own class's and a wrong class's
        signature (N × k each), so that it starts between positives and negatives."""
        embedded = features.to(self.W.dtype) @ self.W
        pairs = torch.cat([(embedded * targets).sum(1), (embedded * wrong_signatures).sum(1)])
        self.b.copy_(-pairs.median())
