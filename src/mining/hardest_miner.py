"""``hardest``: the K seen classes nearest to each image (bootstrapping / OHEM)."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner, smallest_excluding_positive


class HardestMiner(NegativeMiner):
    """Deterministic: the K smallest ``D(x_i, a_c)`` over c ≠ y_i."""

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        return smallest_excluding_positive(inputs.distances, inputs, self.num_negatives)
