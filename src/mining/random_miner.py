"""``random``: K classes uniform over the other seen classes, redrawn at every refresh (P1)."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner, sample_without_replacement


class RandomMiner(NegativeMiner):
    """Uniform negatives without replacement, ignoring the model."""

    uses_model = False

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        uniform = torch.zeros_like(inputs.distances)
        return sample_without_replacement(uniform, inputs, self.num_negatives, generator)
