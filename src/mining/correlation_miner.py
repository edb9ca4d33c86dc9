"""``correlation``: classes whose signatures resemble the image's class, p ∝ exp(cos/T)."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import (
    MiningInputs,
    NegativeMiner,
    check_temperature,
    sample_without_replacement,
)


class CorrelationMiner(NegativeMiner):
    """Samples negatives with ``p(c | y) ∝ exp(cos(a_y, a_c) / T)``.

    Args:
        temperature: T; small T concentrates on the most similar classes.
    """

    uses_model = False  # signatures only

    def __init__(self, temperature: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        log_weights = inputs.class_similarity[inputs.positives] / self.temperature
        return sample_without_replacement(log_weights, inputs, self.num_negatives, generator)
