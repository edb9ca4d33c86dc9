"""The learning curves of a sweep (``curves.png``): per epoch, one line per setting.

Validation curves when the jobs validated (``data.split_mode=val``), otherwise the training
loss and the ``pool/`` diagnostics a test-mode job logs per epoch; each line is the mean over
the setting's seeds, with a shaded ± 1 sample std band; a curve of a few epochs marks each
epoch, and a single epoch (a 1-epoch sweep) is a point with an error bar.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from src.sweeps.jobs import (
    CURVES,
    TRAIN_CURVES,
    VAL_CURVES,
    Job,
    setting_keys,
    setting_of,
    sort_key,
)

BAND_NOTE = "line: mean over seeds; shaded band: ± 1 sample std over seeds (none when n = 1)"
#: curves of at most this many epochs mark each epoch (a single epoch is a point)
FEW_EPOCHS = 10


def curve_keys(jobs: list[Job]) -> list[str]:
    """Validation curves when any job validated, else the training and pool curves it has."""
    val = [key for key in VAL_CURVES if any(key in job.curves for job in jobs)]
    if val:
        return val
    return [key for key in TRAIN_CURVES if any(key in job.curves for job in jobs)]


def draw_curves(jobs: list[Job]):
    """The ``curves.png`` figure (or ``None`` when no job logged a curve): a row per metric, a
    column per dataset, a line per setting (mean over seeds) with a ± 1 std band."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    keys = curve_keys(jobs)
    datasets = sorted({job.data for job in jobs if job.curves})
    if not keys or not datasets:
        return None
    settings = setting_keys(jobs)
    fig = Figure(figsize=(6.5 * len(datasets), 4.2 * len(keys) + 0.4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), len(datasets), squeeze=False)
    for row, key in enumerate(keys):
        for col, data in enumerate(datasets):
            ax = axes[row][col]
            runs: dict[tuple[str, ...], list[dict[int, float]]] = defaultdict(list)
            plotted: set[int] = set()
            for job in jobs:
                if job.data == data and key in job.curves:
                    runs[setting_of(job, settings)].append(job.curves[key])
            for setting in sorted(runs, key=sort_key):
                curves = runs[setting]
                epochs = sorted(set.intersection(*(set(run) for run in curves)))
                if not epochs:
                    continue
                values = np.array([[run[e] for e in epochs] for run in curves])
                mean = values.mean(0)
                std = values.std(0, ddof=1) if len(curves) > 1 else np.zeros_like(mean)
                name = setting[2] if setting[1] == "metric" else setting[1]
                extra = [f"{k}={v}" for k, v in zip(settings, setting[3:], strict=True)]
                label = ", ".join([name, *extra]) + f" (n={len(curves)})"
                plotted.update(epochs)
                if len(epochs) == 1:  # a point (a 1-epoch sweep): its ± 1 std as an error bar
                    ax.errorbar(epochs, mean, yerr=std, marker="o", capsize=3, label=label)
                    continue
                few = len(epochs) <= FEW_EPOCHS
                line = ax.plot(epochs, mean, marker="o" if few else None, ms=3, label=label)[0]
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            ax.set_title(f"data={data}")
            ax.set_xlabel("epoch")
            if plotted:  # whole epochs only, half an epoch of margin (not ±0.045 around one)
                ax.set_xlim(min(plotted) - 0.5, max(plotted) + 0.5)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(CURVES[key])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, title="mean (band: ± 1 std)", title_fontsize=7)
    fig.suptitle(BAND_NOTE, fontsize=9)
    return fig


def plot_curves(sweep_dir: Path, jobs: list[Job]) -> Path | None:
    """Write :func:`draw_curves` as ``curves.png``; return its path (``None``: nothing to plot)."""
    fig = draw_curves(jobs)
    if fig is None:
        return None
    path = sweep_dir / "curves.png"
    fig.savefig(path, dpi=110)
    return path
