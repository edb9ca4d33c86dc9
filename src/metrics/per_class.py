"""Per-class results of one evaluation: accuracy per class and the ZSL confusion matrix."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from src.metrics.gzsl import GZSLScores
from src.metrics.zsl import calibrated_predictions, predict

#: the columns of :func:`per_class_rows` (and of ``per_class.csv``)
CSV_COLUMNS = (
    "class_index",
    "class_name",
    "split",
    "n_images",
    "zsl_acc",
    "gzsl_acc",
    "gzsl_acc_cal",
)


def per_class_rows(
    scores: GZSLScores, class_names: Sequence[str], gamma: float | None = None
) -> list[dict[str, object]]:
    """One row per seen or unseen class, in class-index order (the columns of ``CSV_COLUMNS``).

    ``zsl_acc`` (unseen classes only): top-1 among the unseen classes; ``gzsl_acc``: top-1
    among seen ∪ unseen, on the class's own evaluation images; ``gzsl_acc_cal``: the same with
    γ added to the seen classes' distances (empty without γ). The mean of ``zsl_acc`` is the
    run's ``zsl_acc``, the means of ``gzsl_acc`` over seen / unseen rows are ``gzsl_s`` /
    ``gzsl_u``.

    Example:
        >>> scores = GZSLScores(torch.tensor([[0.2, 0.1]]), torch.tensor([0]),
        ...                     torch.tensor([[0.9, 0.1]]), torch.tensor([1]),
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> [(row["class_name"], row["gzsl_acc"], row["gzsl_acc_cal"])
        ...  for row in per_class_rows(scores, ["cat", "dog"], gamma=-0.5)]
        [('cat', 0.0, 1.0), ('dog', 1.0, 1.0)]
    """
    seen, unseen = scores.seen_classes.cpu(), scores.unseen_classes.cpu()
    candidates = torch.cat([seen, unseen])
    parts = {
        "seen": (scores.seen_distances.cpu(), scores.seen_labels.cpu()),
        "unseen": (scores.unseen_distances.cpu(), scores.unseen_labels.cpu()),
    }
    preds = {}
    for name, (d, labels) in parts.items():
        preds[name] = {"gzsl": predict(d, candidates), "labels": labels}
        if gamma is not None:
            preds[name]["cal"] = calibrated_predictions(d, seen, candidates, gamma)
    d_unseen, _ = parts["unseen"]
    preds["unseen"]["zsl"] = predict(d_unseen, unseen)

    def accuracy(p: Tensor, mask: Tensor, c: int) -> float:
        return float((p[mask] == c).double().mean()) if mask.any() else math.nan

    rows, seen_set = [], set(seen.tolist())
    for c in sorted(candidates.tolist()):
        split = "seen" if c in seen_set else "unseen"
        part = preds[split]
        mask = part["labels"] == c
        rows.append(
            {
                "class_index": c,
                "class_name": class_names[c] if c < len(class_names) else str(c),
                "split": split,
                "n_images": int(mask.sum()),
                "zsl_acc": accuracy(part["zsl"], mask, c) if split == "unseen" else "",
                "gzsl_acc": accuracy(part["gzsl"], mask, c),
                "gzsl_acc_cal": accuracy(part["cal"], mask, c) if "cal" in part else "",
            }
        )
    return rows


def zsl_confusion(scores: GZSLScores) -> Tensor:
    """Row-normalised ZSL confusion matrix (U × U, float64) in ``unseen_classes`` order.

    Row i: the images of unseen class i; column j: the share of them predicted as unseen class
    j when ranked among the unseen classes only. Its mean diagonal is the ZSL accuracy.
    """
    unseen = scores.unseen_classes.cpu()
    labels = scores.unseen_labels.cpu()
    keep = torch.isin(labels, unseen)
    preds = predict(scores.unseen_distances.cpu()[keep], unseen)
    true_local = torch.searchsorted(unseen, labels[keep])
    pred_local = torch.searchsorted(unseen, preds)
    u = len(unseen)
    counts = torch.bincount(true_local * u + pred_local, minlength=u * u).reshape(u, u).double()
    return counts / counts.sum(1, keepdim=True).clamp_min(1.0)
