"""Per-class results of one evaluation: accuracy per class and the ZSL confusion matrix.

Ties are scored by their expectation (:mod:`src.metrics.ties`): a k-way tie that holds the true
class counts 1/k, and spreads its image's confusion row 1/k over the tied classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from src.metrics.scores import GZSLScores
from src.metrics.ties import class_sums, nearest_credit, nearest_ties, stacked

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
        >>> scores = GZSLScores(torch.tensor([[0.2, 0.1], [0.3, 0.3]]), torch.tensor([0, 0]),
        ...                     torch.tensor([[0.9, 0.1]]), torch.tensor([1]),
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> [(row["class_name"], row["gzsl_acc"], row["gzsl_acc_cal"])
        ...  for row in per_class_rows(scores, ["cat", "dog"], gamma=-0.5)]
        [('cat', 0.25, 1.0), ('dog', 1.0, 1.0)]
    """
    seen, unseen = scores.seen_classes.cpu(), scores.unseen_classes.cpu()
    candidates = torch.cat([seen, unseen])
    size = int(max(candidates.max(), scores.seen_distances.shape[1] - 1)) + 1
    parts = {
        "seen": (scores.seen_distances.cpu(), scores.seen_labels.cpu()),
        "unseen": (scores.unseen_distances.cpu(), scores.unseen_labels.cpu()),
    }
    sums = {}  # per split and column: the per-class sums of the images' credits
    for name, (d, labels) in parts.items():
        st = stacked(d, labels, seen, unseen)
        sums[name] = {"n": torch.bincount(labels, minlength=size).double()}
        sums[name]["gzsl"] = class_sums(st.credit(0.0), labels, size)
        if gamma is not None:
            sums[name]["cal"] = class_sums(st.credit(float(gamma)), labels, size)
    d_unseen, y_unseen = parts["unseen"]
    sums["unseen"]["zsl"] = class_sums(nearest_credit(d_unseen, y_unseen, unseen), y_unseen, size)

    rows, seen_set = [], set(seen.tolist())
    for c in sorted(candidates.tolist()):
        split = "seen" if c in seen_set else "unseen"
        part = sums[split]
        n = int(part["n"][c])

        def accuracy(column: str, part=part, c=c, n=n) -> object:
            if column not in part:
                return ""
            return float(part[column][c] / n) if n else math.nan

        rows.append(
            {
                "class_index": c,
                "class_name": class_names[c] if c < len(class_names) else str(c),
                "split": split,
                "n_images": n,
                "zsl_acc": accuracy("zsl") if split == "unseen" else "",
                "gzsl_acc": accuracy("gzsl"),
                "gzsl_acc_cal": accuracy("cal"),
            }
        )
    return rows


def zsl_confusion(scores: GZSLScores) -> torch.Tensor:
    """Row-normalised ZSL confusion matrix (U × U, float64) in ``unseen_classes`` order.

    Row i: the images of unseen class i; column j: the share of them predicted as unseen class
    j when ranked among the unseen classes only, an image tied between k classes counting 1/k
    for each. Its mean diagonal is the ZSL accuracy.

    Example:
        >>> scores = GZSLScores(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long),
        ...                     torch.tensor([[9.0, 0.1, 0.5], [9.0, 0.2, 0.2]]),
        ...                     torch.tensor([1, 2]), torch.tensor([0]), torch.tensor([1, 2]))
        >>> zsl_confusion(scores).tolist()
        [[1.0, 0.0], [0.5, 0.5]]
    """
    unseen = scores.unseen_classes.cpu()
    labels = scores.unseen_labels.cpu()
    keep = torch.isin(labels, unseen)
    ties = nearest_ties(scores.unseen_distances.cpu()[keep][:, unseen])
    true_local = torch.searchsorted(unseen, labels[keep])
    u = len(unseen)
    size = ties.sum(dim=1)
    matrix = torch.zeros(u, u, dtype=torch.float64)
    for k in size.unique(sorted=True).tolist():  # exact counts per tie size, then 1/k each
        sel = size == k
        counts = torch.zeros(u, u, dtype=torch.long)
        counts.index_add_(0, true_local[sel], ties[sel].long())
        matrix += counts.double() / k
    return matrix / torch.bincount(true_local, minlength=u).clamp_min(1)[:, None].double()
