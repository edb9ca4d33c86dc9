"""``loss_weighted``: negatives sampled in proportion to their current loss ℓ(x_i, c)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner, sample_without_replacement


class LossWeightedMiner(NegativeMiner):
    """Samples negatives with ``p ∝ (1/β) log(1 + exp(−β (D − b)))``, the negative-pair loss."""

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        margin = -inputs.beta * (inputs.distances - inputs.threshold)
        # log(softplus(z)) ≈ z for very negative z, where softplus underflows to 0.
        log_loss = torch.where(margin < -30.0, margin, F.softplus(margin).log())
        return sample_without_replacement(log_loss, inputs, self.num_negatives, generator)
