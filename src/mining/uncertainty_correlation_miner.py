"""``uncertainty_correlation``: p ∝ p_uncertainty · p_correlation, P1's best strategy."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import (
    MiningInputs,
    NegativeMiner,
    check_temperature,
    sample_without_replacement,
)
from src.mining.uncertainty_miner import uncertainty_log_weights


class UncertaintyCorrelationMiner(NegativeMiner):
    """Samples negatives with ``p ∝ exp(−|D − b| / T_u) · exp(cos(a_y, a_c) / T_c)``.

    Args:
        temperature: T_u of the uncertainty term, in units of distance.
        correlation_temperature: T_c of the signature-similarity term.
    """

    def __init__(
        self, temperature: float = 1.0, correlation_temperature: float = 0.1, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.temperature = check_temperature(temperature)
        self.correlation_temperature = check_temperature(
            correlation_temperature, "miner.correlation_temperature"
        )

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        log_weights = uncertainty_log_weights(inputs, self.temperature)
        log_weights += inputs.class_similarity[inputs.positives] / self.correlation_temperature
        return sample_without_replacement(log_weights, inputs, self.num_negatives, generator)
