"""The miner contract: distances of training images to the seen classes in, K negatives out.

Every strategy is a small subclass that fills in :meth:`NegativeMiner.select`; the base class
validates its knobs and checks what comes out. Miners see one chunk of images at a time and work
in *local* class indices (columns of the seen-class distance matrix); the pool callback maps them
back to dataset classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

_MASKED = float("-inf")
_FLOOR = -1e4  # finite floor for log-probabilities, so that only the positive is ever masked


@dataclass
class MiningInputs:
    """What a miner may use for one chunk of n training images and S seen classes.

    Attributes:
        distances: ``D(x_i, a_c)`` under the current model, n × S.
        positives: the local index of each image's own class, n.
        threshold: the distance below which a negative is on the wrong side: the metric's
            threshold b (a float), or one per image (n × 1) for a ranking model
            (:meth:`~src.mining.scorer.PairScorer.thresholds`).
        class_similarity: cosine similarity between seen-class signatures, S × S.
        beta: the loss's sharpness β (used by loss-based strategies).
    """

    distances: Tensor
    positives: Tensor
    threshold: float | Tensor
    class_similarity: Tensor
    beta: float = 1.0

    @property
    def positive_mask(self) -> Tensor:
        mask = torch.zeros_like(self.distances, dtype=torch.bool)
        return mask.scatter_(1, self.positives[:, None], True)


class NegativeMiner(ABC):
    """Chooses K negative classes per training image (:meth:`select`).

    When and how often a pool is refreshed is the pool's business
    (:class:`~src.mining.pool.NegativePool`); a strategy only declares what it needs.

    Args:
        num_negatives: K, negatives per image (distinct, never the image's class).
    """

    #: whether the strategy reads the current model's distances (then the pool starts with a
    #: warm-up epoch of random negatives by default: an untrained model's ranking is noise)
    uses_model: bool = True
    #: whether the strategy's first pool is kept for the whole run (``random_fixed``)
    draws_once: bool = False

    def __init__(self, num_negatives: int = 5):
        check_value("miner.num_negatives", num_negatives, num_negatives >= 1, "≥ 1")
        self.num_negatives = int(num_negatives)

    @property
    def name(self) -> str:
        return type(self).__name__

    def check_num_classes(self, num_seen: int) -> None:
        """Raise if K distinct negatives cannot exist among ``num_seen`` training classes."""
        if self.num_negatives > num_seen - 1:
            raise ValueError(
                f"miner.num_negatives={self.num_negatives} is invalid for this data: it must be "
                f"≤ {num_seen - 1} (number of training classes − 1 = {num_seen} − 1)."
            )

    def mine(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        """Local indices (n × K) of each image's negatives, distinct and never the positive."""
        self.check_num_classes(inputs.distances.shape[1])
        return self.select(inputs, generator)

    @abstractmethod
    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        """The strategy: return n × K local class indices."""

    def __repr__(self) -> str:
        return f"{self.name}(num_negatives={self.num_negatives})"


def check_value(key: str, value: float, ok: bool, allowed: str) -> None:
    """Raise ``ValueError`` naming ``key`` when a configured value is not allowed."""
    if not ok:
        raise ValueError(f"{key}={value} is invalid: it must be {allowed}.")


def check_temperature(temperature: float, key: str = "miner.temperature") -> float:
    check_value(key, temperature, temperature > 0, "> 0")
    return float(temperature)


def sample_without_replacement(
    log_weights: Tensor, inputs: MiningInputs, k: int, generator: torch.Generator
) -> Tensor:
    """Draw k distinct classes per row with p ∝ exp(log_weights), excluding the positive.

    Gumbel-top-k: adding Gumbel noise to log-probabilities and keeping the k largest is an
    exact draw without replacement, vectorised over all rows.
    """
    uniform = torch.rand(
        log_weights.shape, generator=generator, device=log_weights.device, dtype=log_weights.dtype
    )
    gumbel = -torch.log(-torch.log(uniform.clamp_(1e-12, 1.0 - 1e-7)))
    # Shift each row so its largest candidate weight is 0: the floor then only affects classes
    # e^-10000 times less likely than the best one, whatever the scale of the weights.
    shift = log_weights.masked_fill(inputs.positive_mask, _MASKED).amax(1, keepdim=True)
    keys = (log_weights - shift).clamp_min(_FLOOR) + gumbel
    return keys.masked_fill_(inputs.positive_mask, _MASKED).topk(k, dim=1).indices


def smallest_excluding_positive(values: Tensor, inputs: MiningInputs, k: int) -> Tensor:
    """The k columns of smallest value per row, the positive excluded."""
    keys = values.masked_fill(inputs.positive_mask, float("inf"))
    return keys.topk(k, dim=1, largest=False, sorted=True).indices
