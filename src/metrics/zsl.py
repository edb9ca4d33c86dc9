"""ZSL/GZSL metrics of the GBU protocol, functional form.

Per-class top-1 accuracy is averaged over a given set of *target classes* (a class of the set
with no prediction counts with accuracy 0), whatever classes the predictions fall on; torchmetrics'
``average="macro"`` averages over every class present in the labels or the predictions instead.
The metrics score ties fairly (:mod:`src.metrics.ties`): an image whose nearest distance is shared
by k candidates, its true class among them, counts 1/k; ``TIE_RTOL`` says what counts as a tie.
"""

from __future__ import annotations

import torch
from torch import Tensor

from src.metrics.ties import TIE_RTOL, class_sums, nearest_credit, topk_credit

__all__ = [
    "TIE_RTOL",
    "calibrated_predictions",
    "class_counts",
    "harmonic_mean",
    "mean_class_accuracy",
    "per_class_credit",
    "per_class_nearest",
    "per_class_top1",
    "per_class_topk",
    "predict",
]


def class_counts(preds: Tensor, target: Tensor, num_classes: int) -> tuple[Tensor, Tensor]:
    """(correct, total) predictions per true class, each of length ``num_classes``."""
    correct = torch.bincount(target[preds == target], minlength=num_classes)
    return correct, torch.bincount(target, minlength=num_classes)


def mean_class_accuracy(correct: Tensor, total: Tensor, classes: Tensor) -> Tensor:
    """Mean over ``classes`` of per-class accuracy ``correct / total`` (``correct`` may hold
    fractional credits).

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
    """Per-class mean top-1 accuracy of hard predictions ``preds`` over the target ``classes``."""
    num_classes = int(max(preds.max(), target.max(), classes.max())) + 1
    correct, total = class_counts(preds, target, num_classes)
    return mean_class_accuracy(correct, total, classes)


def per_class_credit(credit: Tensor, target: Tensor, classes: Tensor) -> Tensor:
    """Per-class mean of per-image credits (e.g. 1/k for a k-way tie) over the target
    ``classes``; independent of the order of the images, to the last bit."""
    target = target.cpu().long()
    classes = classes.cpu().long()
    num_classes = int(max(target.max() if len(target) else 0, classes.max())) + 1
    total = torch.bincount(target, minlength=num_classes)
    return mean_class_accuracy(class_sums(credit, target, num_classes), total, classes)


def per_class_nearest(
    distances: Tensor, labels: Tensor, candidates: Tensor, classes: Tensor | None = None
) -> Tensor:
    """Per-class mean top-1 accuracy among ``candidates``, ties scored 1/k (the ZSL accuracy
    with the unseen classes as candidates).

    Example:
        >>> d = torch.tensor([[0.5, 0.5], [0.1, 0.9]])  # image of class 1 tied, of class 0 right
        >>> float(per_class_nearest(d, torch.tensor([1, 0]), torch.tensor([0, 1])))
        0.75
    """
    classes = candidates if classes is None else classes
    return per_class_credit(nearest_credit(distances, labels, candidates), labels, classes)


def harmonic_mean(seen: Tensor | float, unseen: Tensor | float) -> Tensor:
    """GZSL ``H = 2us / (u + s)``; 0 when both are 0."""
    s, u = torch.as_tensor(seen, dtype=torch.float64), torch.as_tensor(unseen, dtype=torch.float64)
    total = s + u
    return torch.where(total > 0, 2 * s * u / total.clamp_min(1e-12), torch.zeros_like(total))


def predict(distances: Tensor, candidates: Tensor) -> Tensor:
    """The class of ``candidates`` with the smallest distance, per row of ``distances`` (N × C).

    One hard prediction per image: a tie goes to the first tied candidate. The metrics do not
    use it; they score ties fairly (:func:`per_class_nearest`).
    """
    return candidates[distances[:, candidates].argmin(dim=1)]


def per_class_topk(
    distances: Tensor,
    labels: Tensor,
    candidates: Tensor,
    k: int = 5,
    classes: Tensor | None = None,
) -> Tensor:
    """Per-class mean top-k accuracy: an image is right when its class is among its k nearest,
    ties at the k-th place scored by their expectation (:func:`~src.metrics.ties.topk_credit`).

    Args:
        distances: N × C distances of every image to every dataset class.
        labels: dataset class of every image (N).
        candidates: dataset indices of the classes to rank (ZSL: the unseen classes).
        k: how many nearest candidates count; k ≥ ``len(candidates)`` gives accuracy 1.
        classes: target classes to average over (default: ``candidates``).

    Returns:
        A float64 scalar.

    Example:
        >>> d = torch.tensor([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])  # images of classes 1 and 0
        >>> labels, candidates = torch.tensor([1, 0]), torch.tensor([0, 1, 2])
        >>> float(per_class_topk(d, labels, candidates, k=2, classes=torch.tensor([0, 1])))
        0.5
        >>> d = torch.tensor([[0.1, 0.2, 0.2, 0.2]])  # class 3 shares places 2–4: credit 1/3
        >>> labels, candidates = torch.tensor([3]), torch.arange(4)
        >>> float(per_class_topk(d, labels, candidates, k=2, classes=labels))
        0.3333333333333333
    """
    classes = candidates if classes is None else classes
    credit = topk_credit(distances, labels, candidates, k)
    return per_class_credit(credit, labels, classes)


def calibrated_predictions(
    distances: Tensor, seen_classes: Tensor, candidates: Tensor, gamma: float
) -> Tensor:
    """Calibrated stacking: the candidate with the smallest distance after adding γ to seen ones.

    Args:
        distances: N × C distances of every image to every dataset class.
        seen_classes: dataset indices of the seen classes (those penalised by γ).
        candidates: dataset indices of the classes an image may be assigned to (usually
            seen ∪ unseen; a tie goes to the first tied candidate: the metrics do not use these
            hard predictions but score ties fairly, :class:`~src.metrics.ties.Stacked`).
        gamma: the penalty added to the seen candidates' distances (γ = 0: plain argmin).

    Returns:
        The predicted dataset class of every image (N).

    Example:
        >>> d = torch.tensor([[1.0, 1.5], [1.0, 3.0]])  # class 0 seen, class 1 unseen
        >>> calibrated_predictions(d, torch.tensor([0]), torch.tensor([0, 1]), 1.0).tolist()
        [1, 0]
    """
    candidates = candidates.to(distances.device)
    penalty = torch.isin(candidates, seen_classes.to(distances.device)).to(distances.dtype)
    return candidates[(distances[:, candidates] + gamma * penalty).argmin(dim=1)]
