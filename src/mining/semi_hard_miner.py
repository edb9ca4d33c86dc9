"""``semi_hard``: the K nearest classes that are still farther than the positive."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner, smallest_excluding_positive


class SemiHardMiner(NegativeMiner):
    """The K smallest ``D(x, a_c)`` among classes with ``D(x, a_c) > D(x, a_y)`` (FaceNet).

    When an image has fewer than K such classes, the pool is filled with the violating classes
    (``D ≤ D(x, a_y)``) closest to the positive's distance, so every image still gets K.
    """

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        d = inputs.distances
        positive = d.gather(1, inputs.positives[:, None])
        beyond = d > positive
        # Semi-hard classes rank by distance; violators after all of them, nearest D_pos first.
        keys = torch.where(beyond, d - positive, (positive - d) + d.amax(1, keepdim=True) + 1.0)
        return smallest_excluding_positive(keys, inputs, self.num_negatives)
