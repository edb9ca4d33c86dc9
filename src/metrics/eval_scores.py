"""Stateful, DDP-safe store of evaluation distances and labels (torchmetrics list states)."""

from __future__ import annotations

from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat


class EvalScores(Metric):
    """Keeps every evaluation image's distances to all classes (N × C) and its label.

    The states are lists concatenated across processes (``dist_reduce_fx="cat"``), so the
    calibrated metrics computed from :meth:`compute` see every image of every process. The
    matrices are small (evaluation images × dataset classes).

    Example:
        >>> import torch
        >>> store = EvalScores()
        >>> store.update(torch.zeros(2, 3), torch.tensor([0, 1]))
        >>> store.update(torch.ones(1, 3), torch.tensor([2]))
        >>> distances, labels = store.compute()
        >>> tuple(distances.shape), labels.tolist()
        ((3, 3), [0, 1, 2])
    """

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("distances", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, distances: Tensor, labels: Tensor) -> None:
        self.distances.append(distances.detach())
        self.labels.append(labels.detach().long())

    def compute(self) -> tuple[Tensor, Tensor]:
        if isinstance(self.distances, list) and not self.distances:
            raise ValueError("EvalScores: no evaluation images were stored.")
        return dim_zero_cat(self.distances), dim_zero_cat(self.labels)
