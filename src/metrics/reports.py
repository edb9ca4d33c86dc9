"""Per-class results of one evaluation: ``per_class.csv`` and the ZSL ``confusion.png``.

:class:`EvalResult` holds what an evaluation epoch saw (distances of every evaluation image to
every class, labels, seen/unseen classes, the calibration γ); :class:`~src.models.classifier.
ZSLClassifier` keeps the last one as ``last_eval``, and :func:`write_eval_reports` turns it into
files (``src/train.py`` and ``src/eval.py`` call it for their final evaluation).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from lightning.pytorch.utilities import rank_zero_only
from torch import Tensor

from src.metrics.calibration import calibrated_predictions
from src.metrics.zsl import predict

CSV_COLUMNS = (
    "class_index",
    "class_name",
    "split",
    "n_images",
    "zsl_acc",
    "gzsl_acc",
    "gzsl_acc_cal",
)


@dataclass
class EvalResult:
    """Distances and labels of one evaluation (CPU tensors), and its calibration γ.

    Attributes:
        stage: ``"val"`` or ``"test"``.
        distances_unseen: distances of the unseen-class images to every dataset class (N_u × C).
        labels_unseen: their dataset classes (N_u).
        distances_seen: distances of the seen-class images to every dataset class (N_s × C).
        labels_seen: their dataset classes (N_s).
        seen_classes: dataset indices of the seen classes.
        unseen_classes: dataset indices of the unseen classes.
        gamma: the γ of the calibrated metrics, or ``None`` when none was available.
    """

    stage: str
    distances_unseen: Tensor
    labels_unseen: Tensor
    distances_seen: Tensor
    labels_seen: Tensor
    seen_classes: Tensor
    unseen_classes: Tensor
    gamma: float | None = None


def per_class_rows(result: EvalResult, class_names: Sequence[str]) -> list[dict[str, object]]:
    """One row per seen or unseen class, in class-index order (the columns of ``CSV_COLUMNS``).

    ``zsl_acc`` (unseen classes only): top-1 among the unseen classes; ``gzsl_acc``: top-1
    among seen ∪ unseen, on the class's own evaluation images; ``gzsl_acc_cal``: the same with
    γ added to the seen classes' distances (empty without γ). The mean of ``zsl_acc`` is the
    run's ``zsl_acc``, the means of ``gzsl_acc`` over seen / unseen rows are ``gzsl_s`` /
    ``gzsl_u``.

    Example:
        >>> r = EvalResult("test", torch.tensor([[0.9, 0.1]]), torch.tensor([1]),
        ...                torch.tensor([[0.2, 0.1]]), torch.tensor([0]),
        ...                torch.tensor([0]), torch.tensor([1]), gamma=-0.5)
        >>> [(row["class_name"], row["gzsl_acc"], row["gzsl_acc_cal"])
        ...  for row in per_class_rows(r, ["cat", "dog"])]
        [('cat', 0.0, 1.0), ('dog', 1.0, 1.0)]
    """
    seen, unseen = result.seen_classes.cpu(), result.unseen_classes.cpu()
    candidates = torch.cat([seen, unseen])
    parts = {
        "seen": (result.distances_seen.cpu(), result.labels_seen.cpu()),
        "unseen": (result.distances_unseen.cpu(), result.labels_unseen.cpu()),
    }
    preds = {}
    for name, (d, labels) in parts.items():
        preds[name] = {"gzsl": predict(d, candidates), "labels": labels}
        if result.gamma is not None:
            preds[name]["cal"] = calibrated_predictions(d, seen, candidates, result.gamma)
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


def write_per_class_csv(result: EvalResult, class_names: Sequence[str], path: Path) -> Path:
    """Write :func:`per_class_rows` as CSV (accuracies with 6 decimals); return ``path``."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in per_class_rows(result, class_names):
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return Path(path)


def zsl_confusion(result: EvalResult) -> Tensor:
    """Row-normalised ZSL confusion matrix (U × U, float64) in ``unseen_classes`` order.

    Row i: the images of unseen class i; column j: the share of them predicted as unseen class
    j when ranked among the unseen classes only. Its mean diagonal is the ZSL accuracy.
    """
    unseen = result.unseen_classes.cpu()
    labels = result.labels_unseen.cpu()
    keep = torch.isin(labels, unseen)
    preds = predict(result.distances_unseen.cpu()[keep], unseen)
    true_local = torch.searchsorted(unseen, labels[keep])
    pred_local = torch.searchsorted(unseen, preds)
    u = len(unseen)
    counts = torch.bincount(true_local * u + pred_local, minlength=u * u).reshape(u, u).double()
    return counts / counts.sum(1, keepdim=True).clamp_min(1.0)


def plot_confusion(result: EvalResult, class_names: Sequence[str], path: Path) -> Path:
    """Draw :func:`zsl_confusion`, class names on both axes (matplotlib Agg); return ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = zsl_confusion(result).numpy()
    names = [class_names[c] if c < len(class_names) else str(c) for c in result.unseen_classes]
    u = len(names)
    side = min(max(5.0, 0.28 * u + 3.0), 40.0)
    row_points = side * 72 * 0.8 / max(u, 1)  # height of one matrix row, in points
    fontsize = max(3.0, min(9.0, 0.45 * row_points))
    fig = Figure(figsize=(side + 1.0, side))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the row's images")
    ax.set_xticks(range(u), names, rotation=90, fontsize=fontsize)
    ax.set_yticks(range(u), names, fontsize=fontsize)
    ax.set_xlabel("predicted class (among the unseen classes)")
    ax.set_ylabel("true class")
    accuracy = float(matrix.diagonal().mean()) if u else math.nan
    ax.set_title(f"{result.stage}: ZSL confusion, row-normalised (ZSL acc {accuracy:.3f})")
    if u <= 20:  # small enough to print the values
        for i in range(u):
            for j in range(u):
                if matrix[i, j] >= 0.005:
                    colour = "white" if matrix[i, j] > 0.5 else "black"
                    ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center",
                            fontsize=fontsize * 0.8, color=colour)  # fmt: skip
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)


def write_eval_reports(
    result: EvalResult, class_names: Sequence[str], output_dir: str | Path
) -> list[Path]:
    """Write ``per_class.csv`` and ``confusion.png`` into ``output_dir``; return their paths.

    Under DDP only rank 0 writes (every rank holds the same gathered result); the others
    return an empty list.
    """
    if getattr(rank_zero_only, "rank", 0) != 0:
        return []
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_per_class_csv(result, class_names, output_dir / "per_class.csv"),
        plot_confusion(result, class_names, output_dir / "confusion.png"),
    ]
