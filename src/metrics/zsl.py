"""ZSL/GZSL metrics of the GBU protocol, functional form.

Per-class top-1 accuracy is averaged over the *target classes themselves*: a class of the target
set with no prediction still counts (with accuracy 0), unlike torchmetrics' ``average="macro"``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def class_counts(preds: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(correct, total) predictions per true class, each of length ``num_classes``."""
    correct = torch.bincount(target[preds == target], minlength=num_classes)
    return correct, torch.bincount(target, minlength=num_classes)


def mean_class_accuracy(correct: Tensor, total: Tensor, classes: Tensor) -> Tensor:
    """Mean over ``classes`` of per-class accuracy ``correct / total``.

    Raises:
        ValueError: when a class of ``classes`` has no samples (its accuracy is undefined).
    """
    empty = classes[total[classes] == 0]
    if len(empty):
        raise ValueError(
            f"classes {empty.tolist()[:10]} have no evaluation samples; per-class accuracy "
            "is undefined for them (check the split)."
        )
    return (correct[classes].double() / total[classes].double()).mean()


def per_class_top1(preds: Tensor, target: Tensor, classes: Tensor) -> Tensor:
    """Per-class mean top-1 accuracy of ``preds`` over the target ``classes``."""
    num_classes = int(max(preds.max(), target.max(), classes.max())) + 1
    correct, total = class_counts(preds, target, num_classes)
    return mean_class_accuracy(correct, total, classes)


def harmonic_mean(seen: Tensor | float, unseen: Tensor | float) -> Tensor:
    """GZSL ``H = 2us / (u + s)``; 0 when both are 0."""
    s, u = torch.as_tensor(seen, dtype=torch.float64), torch.as_tensor(unseen, dtype=torch.float64)
    total = s + u
    return torch.where(total > 0, 2 * s * u / total.clamp_min(1e-12), torch.zeros_like(total))


def predict(distances: Tensor, candidates: Tensor) -> Tensor:
    """The class of ``candidates`` with the smallest distance, per row of ``distances`` (N × C)."""
    return candidates[distances[:, candidates].argmin(dim=1)]
