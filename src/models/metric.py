"""The bilinear/Mahalanobis metric between image features and class signatures (P2).

``D(x, a) = ‖L (Wᵀx − a)‖²`` with ``W ∈ R^{d×k}``, ``L ∈ R^{r×k}`` and a threshold ``b``.
This module holds only the math; the objective, optimiser and logging live in
:mod:`src.models.system`.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn


class BilinearMetric(nn.Module):
    """Mahalanobis distance between projected images and class signatures.

    Args:
        feature_dim: d, the image feature dimension.
        signature_dim: k, the class signature dimension.
        rank: r ≤ k, the rank of ``M = LᵀL``; ``None`` means full rank (r = k).

    Example:
        >>> metric = BilinearMetric(feature_dim=4, signature_dim=3)
        >>> metric.distances(torch.randn(5, 4), torch.randn(2, 3)).shape
        torch.Size([5, 2])
    """

    def __init__(self, feature_dim: int, signature_dim: int, rank: int | None = None) -> None:
        super().__init__()
        rank = signature_dim if rank is None else rank
        if not 1 <= rank <= signature_dim:
            raise ValueError(
                f"model.rank={rank} is invalid: it must lie in [1, {signature_dim}] "
                f"(the signature dimension k of this dataset)."
            )
        self.feature_dim, self.signature_dim, self.rank = feature_dim, signature_dim, rank
        self.W = nn.Parameter(torch.zeros(feature_dim, signature_dim))
        self.L = nn.Parameter(torch.eye(rank, signature_dim))
        self.b = nn.Parameter(torch.ones(()))

    def embed(self, features: Tensor) -> Tensor:
        """Attribute prediction ``e(x) = Wᵀx`` (N × k)."""
        return features @ self.W

    def pair_distances(self, features: Tensor, signatures: Tensor) -> Tensor:
        """``D(x_i, a_i)`` for aligned rows (N × d, N × k → N): the per-pair definition."""
        return ((self.embed(features) - signatures) @ self.L.T).square().sum(-1)

    def project_signatures(self, signatures: Tensor) -> Tensor:
        """``Q = A Lᵀ`` (C × r)."""
        return signatures @ self.L.T

    def distances_from_projections(self, image_proj: Tensor, class_proj: Tensor) -> Tensor:
        """All-pairs distances from ``P = XWLᵀ`` (N × r) and ``Q = ALᵀ`` (C × r), one matmul."""
        sq = image_proj.square().sum(1, keepdim=True) + class_proj.square().sum(1)
        return torch.addmm(sq, image_proj, class_proj.T, alpha=-2.0).clamp_min_(0.0)

    def scored_chunks(
        self, features: Tensor, signatures: Tensor, rows: int
    ) -> Iterator[tuple[int, Tensor]]:
        """All-pairs ``D`` of ``rows`` images at a time: yields ``(first row, D of the chunk)``.

        The one scoring routine of the metric: evaluation (:meth:`distances`), the pool
        refresh (:class:`~src.mining.pool.NegativePool`, through the
        :class:`~src.mining.scorer.PairScorer` contract) and the benchmark use it. Each chunk
        of ``features`` (which may live on the host) is moved to the metric's device; ``W Lᵀ``
        and ``A Lᵀ`` are computed once, so an image costs one d × r product.
        """
        class_proj = self.project_signatures(signatures)
        projection = self.W @ self.L.T  # d × r: one product per image instead of two
        for start in range(0, len(features), rows):
            chunk = features[start : start + rows].to(projection.device, non_blocking=True)
            yield start, self.distances_from_projections(chunk @ projection, class_proj)

    def distances(self, features: Tensor, signatures: Tensor, chunk_size: int = 65536) -> Tensor:
        """All-pairs ``D`` (N × C), computed in chunks of ``chunk_size`` images."""
        return torch.cat([d for _, d in self.scored_chunks(features, signatures, chunk_size)])

    def image_major(
        self, features: Tensor, signatures: Tensor, positives: Tensor, negatives: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Distances of a training batch, each image projected once (the training step's form).

        Args:
            features: the batch's images (n × d).
            signatures: every dataset class's signature (C × k).
            positives: each image's class (n).
            negatives: each image's K negative classes (n × K).

        Returns:
            ``(D to the positive (n), D to the negatives (n × K), Wᵀx (n × k))``; the same
            values as :meth:`pair_distances` on the (image, class) pairs.
        """
        embedded = self.embed(features)
        image_proj = embedded @ self.L.T
        class_proj = self.project_signatures(signatures)
        positive_d = (image_proj - class_proj[positives]).square().sum(-1)
        negative_d = (image_proj[:, None, :] - class_proj[negatives]).square().sum(-1)
        return positive_d, negative_d, embedded

    @torch.no_grad()
    def initialise(
        self,
        features: Tensor,
        target_signatures: Tensor,
        ridge: float | None = 1.0,
        negative_signatures: Tensor | None = None,
    ) -> None:
        """Ridge initialisation of W (x → a_{y(x)}), L = I, b = median D of sampled pairs.

        Args:
            features: training images (N × d), already standardised.
            target_signatures: the signature of each image's class (N × k).
            ridge: the ridge penalty α in ``W = (XᵀX + αI)⁻¹ XᵀA``; ``None`` sets W = s·I
                instead (features that already live in the signature space, d = k), with s the
                ratio of the median signature norm to the median feature norm.
            negative_signatures: signatures of a wrong class per image (N × k); when given, b is
                the median over positive and negative pairs, so that it starts between the two.
        """
        if ridge is None:
            if self.feature_dim != self.signature_dim:
                raise ValueError(
                    f"model.init=identity needs feature_dim == signature_dim, got "
                    f"{self.feature_dim} and {self.signature_dim}: use model.init=ridge."
                )
            # Scale-consistent: Wᵀx has the signatures' typical norm, so that D and b start at
            # the signatures' scale whatever the features' preprocessing (s = 1 when both are
            # L2-normalised: D = ‖x − a‖² then ranks classes exactly like the cosine).
            self.W.copy_(identity_scale(features, target_signatures) * torch.eye(self.feature_dim))
        else:
            self.W.copy_(ridge_map(features, target_signatures, ridge).to(self.W.dtype))
        self.L.copy_(torch.eye(self.rank, self.signature_dim))
        pairs = self.pair_distances(features, target_signatures)
        if negative_signatures is not None:
            pairs = torch.cat([pairs, self.pair_distances(features, negative_signatures)])
        self.b.copy_(pairs.median())


def ridge_map(features: Tensor, targets: Tensor, ridge: float) -> Tensor:
    """``W = (XᵀX + αI)⁻¹ XᵀA`` (d × k, float64): regresses each image's target signature."""
    x = features.double()
    gram = x.T @ x + ridge * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return torch.linalg.solve(gram, x.T @ targets.double())


def identity_scale(features: Tensor, signatures: Tensor) -> float:
    """s of the identity initialisation W = s·I: median ‖a_y‖ / median ‖x‖ (non-zero x only).

    1 when features and signatures are both L2-normalised.
    """
    feature_norms = features.norm(dim=1)
    feature_norms = feature_norms[feature_norms > 0]
    if len(feature_norms) == 0:
        return 1.0
    ratio = float(signatures.norm(dim=1).median() / feature_norms.median())
    return ratio if abs(ratio - 1.0) > 1e-6 else 1.0
