"""``all``: every other training class is a negative of every image (the published ranking
methods: ALE, DeViSE and SJE sum or maximise over all classes)."""

from __future__ import annotations

import torch
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner


class AllMiner(NegativeMiner):
    """K = S − 1: the pool of an image holds every seen class but its own, in class order.

    The same pool as any strategy with ``miner.num_negatives`` = number of training classes − 1,
    without having to know that number: ``num_negatives`` is ``None`` and the pool's width
    follows the data. It ignores the model and is drawn once (the pool never changes).
    """

    uses_model = False
    draws_once = True

    def __init__(self, num_negatives: None = None) -> None:
        if num_negatives is not None:  # K follows the number of seen classes
            raise ValueError(
                f"miner.num_negatives={num_negatives} is invalid with miner=all: it must be null "
                "(every other training class); use another miner for K negatives."
            )
        self.num_negatives = None

    def check_num_classes(self, num_seen: int) -> None:
        if num_seen < 2:
            raise ValueError(
                f"miner=all needs at least 2 training classes (one positive, one negative); "
                f"this data has {num_seen}."
            )

    def select(self, inputs: MiningInputs, generator: torch.Generator) -> Tensor:
        n, num_seen = inputs.distances.shape
        others = torch.arange(num_seen - 1, device=inputs.distances.device).expand(n, -1)
        # Columns 0 … S−2 of each row, shifted by one from the positive on: every c ≠ y once.
        return others + (others >= inputs.positives[:, None]).long()

    def __repr__(self) -> str:
        return f"{self.name}(num_negatives=all)"
