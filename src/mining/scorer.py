"""What the negative pool needs from a model: pair distances in chunks, a threshold, a β.

Two protocols, so that the pool and its callback read no model class:

- :class:`PairScorer` scores (image, class) pairs as *distances* (smaller = closer, i.e. harder
  as a negative: every miner reads them that way) and says which negatives are on the wrong
  side. A trained system's (:class:`~src.models.pool_trained.PoolScorer`) takes the distances
  from its scorer (the metric's ``D``, the bilinear compatibility's ``−F``) and the wrong side
  from its loss (P2's pair loss: ``D < b``; a ranking loss: inside its margin,
  ``−F(x, j) < −F(x, y) + Δ``).
- :class:`PoolTrainedModel` is the LightningModule side: the scorer to mine with, the β that
  loss-based strategies read, and the ``negative_pool`` attribute the callback writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class PairScorer(Protocol):
    """Scores every (image, class) pair as a distance, a memory-bounded chunk at a time."""

    def scored_chunks(
        self, features: Tensor, signatures: Tensor, rows: int
    ) -> Iterator[tuple[int, Tensor]]:
        """Yield ``(first row, distances of rows images to every signature)`` chunk by chunk;
        ``features`` may live on another device than the scorer (each chunk is moved)."""
        ...

    def thresholds(self, distances: Tensor, positives: Tensor) -> float | Tensor:
        """The distance below which a negative is on the wrong side, for a chunk's
        ``distances`` (n × S) and its images' own classes (local indices, n): a float for all
        pairs, or an n × 1 tensor per image. Uncertainty miners peak there, ``loss_weighted``
        weighs by ``softplus(−β (D − threshold))`` and the pool reports the share below it."""
        ...


@runtime_checkable
class PoolTrainedModel(Protocol):
    """A LightningModule trained on the pool's negatives (:class:`~src.callbacks.
    NegativePoolRefresh` writes ``negative_pool``: training image index → K dataset classes)."""

    negative_pool: Tensor | None

    def pool_scorer(self) -> PairScorer:
        """The scorer the pool mines with (the model's current state)."""
        ...

    @property
    def mining_beta(self) -> float:
        """β of loss-based strategies (``loss_weighted``)."""
        ...
