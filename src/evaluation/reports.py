"""The per-class files of a job's final evaluation: ``per_class.csv`` and ``confusion.png``.

The numbers come from :mod:`src.metrics.per_class`; this module only writes them, beside the
job's ``metrics.json`` (:func:`src.cli.job.write_metrics`).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from src.core.rank import is_rank_zero
from src.metrics.gzsl import Evaluation
from src.metrics.per_class import CSV_COLUMNS, per_class_rows, zsl_confusion
from src.metrics.scores import GZSLScores


def write_per_class_csv(
    scores: GZSLScores, class_names: Sequence[str], path: Path, gamma: float | None = None
) -> Path:
    """Write :func:`per_class_rows` as CSV (accuracies with 6 decimals); return ``path``."""
    with Path(path).open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in per_class_rows(scores, class_names, gamma):
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    return Path(path)


def plot_confusion(
    scores: GZSLScores, class_names: Sequence[str], path: Path, stage: str = "test"
) -> Path:
    """Draw :func:`zsl_confusion`, class names on both axes (matplotlib Agg); return ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = zsl_confusion(scores).numpy()
    names = [class_names[c] if c < len(class_names) else str(c) for c in scores.unseen_classes]
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
    ax.set_title(f"{stage}: ZSL confusion, row-normalised (ZSL acc {accuracy:.3f})")
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
    evaluation: Evaluation, class_names: Sequence[str], output_dir: str | Path
) -> list[Path]:
    """Write ``per_class.csv`` and ``confusion.png`` into ``output_dir``; return their paths.

    Under DDP only rank 0 writes (every rank holds the same gathered result); the others
    return an empty list.
    """
    if not is_rank_zero():
        return []
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    return [
        write_per_class_csv(
            evaluation.scores, class_names, output_dir / "per_class.csv", evaluation.gamma
        ),
        plot_confusion(
            evaluation.scores, class_names, output_dir / "confusion.png", evaluation.stage
        ),
    ]
