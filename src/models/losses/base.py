"""What every loss of the pool-trained models shares: the batch it reads (:class:`ScoredBatch`)
and the contract it fills in (:class:`PoolLoss`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn


@dataclass
class ScoredBatch:
    """A training batch as a loss reads it (n images, K pool negatives each).

    Attributes:
        positive: distance of each image to its own class (n).
        negatives: distances to its K pool negatives (n × K).
        embedded: the images' attribute predictions ``Wᵀx`` (n × k).
        targets: their classes' signatures (n × k).
        threshold: the scorer's learned threshold b, or None when it has none.
        num_candidates: the other seen classes an image is ranked against (S − 1).
    """

    positive: Tensor
    negatives: Tensor
    embedded: Tensor
    targets: Tensor
    threshold: Tensor | None
    num_candidates: int


class PoolLoss(nn.Module):
    """A loss on (image, own class, K pool negatives) distances; see the module.

    Subclasses declare :attr:`parts` (logged as ``train/<part>``, ``loss`` first), what they
    sample in the protocol's search (:meth:`search_space`, :meth:`default_params`) and whether
    they need the scorer's learned threshold (:attr:`needs_threshold`).
    """

    parts: tuple[str, ...] = ("loss",)
    needs_threshold: bool = False

    def forward(self, batch: ScoredBatch) -> dict[str, Tensor]:
        raise NotImplementedError

    def thresholds(
        self, distances: Tensor, positives: Tensor, learned: Tensor | None
    ) -> float | Tensor:
        """The distance below which a negative is on the wrong side, for a chunk's
        ``distances`` (n × S) and its images' own classes (local indices, n); ``learned``: the
        scorer's threshold b, if any (:class:`~src.mining.scorer.PairScorer`)."""
        raise NotImplementedError

    @property
    def mining_beta(self) -> float:
        """β of ``miner=loss_weighted``."""
        raise NotImplementedError

    @staticmethod
    def search_space(trial: Any) -> dict[str, Any]:
        """The loss's parameters in a protocol study: ``{"model.<key>": value}``."""
        return {}

    @staticmethod
    def default_params(model_cfg: Mapping) -> dict[str, Any]:
        """The configured values of :meth:`search_space`'s parameters (the first trial)."""
        return {}


def check_value(key: str, value: object, ok: bool, allowed: str) -> None:
    if not ok:
        shown = repr(value) if isinstance(value, str) else value
        raise ValueError(f"model.{key}={shown} is invalid: it must be {allowed}.")
