"""``uncertainty``: pairs near the decision threshold, p ∝ exp(−|D − b| / T)."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import (
    MiningInputs,
    NegativeMiner,
    check_temperature,
    sample_without_replacement,
)


def uncertainty_log_weights(inputs: MiningInputs, temperature: float) -> Tensor:
    """``−|D(x_i, a_c) − b| / T``: log-weights peaking on pairs the model is least sure of."""
    return -(inputs.distances - inputs.threshold).abs() / temperature


class UncertaintyMiner(NegativeMiner):
    """Samples negatives with ``p(c | x) ∝ exp(−|D(x, a_c) − b| / T)``.

    Args:
        temperature: T, in units of distance.
    """

    def __init__(self, temperature: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        log_weights = uncertainty_log_weights(inputs, self.temperature)
        return sample_without_replacement(log_weights, inputs, self.num_negatives, generator)
