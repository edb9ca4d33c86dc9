"""Stateful, DDP-safe per-class accuracy (torchmetrics)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from src.metrics.zsl import class_counts, mean_class_accuracy


class PerClassAccuracy(Metric):
    """Accumulates correct/total counts per class; sums them across processes.

    :meth:`compute` returns the mean per-class accuracy over the classes given at construction
    (or passed to :meth:`mean_over`), so classes with no predictions are never silently dropped.

    Example:
        >>> metric = PerClassAccuracy(num_classes=3, classes=torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([0, 1, 0]), torch.tensor([0, 1, 1]))
        >>> float(metric.compute())
        0.75
    """

    full_state_update = False

    def __init__(self, num_classes: int, classes: Tensor | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.classes = torch.arange(num_classes) if classes is None else classes.cpu()
        self.add_state("correct", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", torch.zeros(num_classes, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor) -> None:
        correct, total = class_counts(preds, target, self.num_classes)
        self.correct += correct
        self.total += total

    def compute(self) -> Tensor:
        return mean_class_accuracy(self.correct, self.total, self.classes.to(self.correct.device))

    def per_class(self) -> Tensor:
        """Accuracy of every class (NaN where the class has no samples)."""
        return self.correct.double() / self.total.double()
