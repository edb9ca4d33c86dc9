"""Aggregate a multirun: ``python -m src.report <multirun folder>``.

Reads every job folder of the sweep (its Hydra config, ``metrics.json``, ``failure.txt`` and
``csv/metrics.csv``) and writes into the sweep folder:

- ``report.csv`` and ``report.md``: one row per (dataset, strategy) with the final metrics as
  mean ± std over seeds, the number of finished runs and of failed runs;
- ``curves.png``: validation ZSL accuracy (and GZSL H) against epoch, one curve per strategy
  with a ±std band over seeds (P1's learning-curve comparison).

Works on a sweep that is still running or was cut short: jobs without results are listed as
skipped.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

CURVES = {"val/zsl_acc": "validation ZSL accuracy", "val/gzsl_H": "validation GZSL H"}
METRIC_ORDER = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H")


@dataclass
class Job:
    """One job folder of a sweep."""

    path: Path
    data: str
    model: str
    miner: str
    seed: int
    status: str  # finished | failed | incomplete
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    error: str = ""


def read_job(path: Path) -> Job:
    """Read a job folder written by ``src.train``."""
    hydra_cfg = OmegaConf.load(path / ".hydra" / "hydra.yaml").hydra
    cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
    choices = hydra_cfg.runtime.choices
    model = str(choices.get("model", "metric"))
    # Baselines ignore the miner: name them by the model alone.
    miner = str(choices.get("miner")) if model == "metric" else "-"
    job = Job(path, str(choices.get("data")), model, miner, int(cfg.seed), "incomplete")
    if (path / "metrics.json").is_file():
        job.status = "finished"
        job.metrics = {
            k: v
            for k, v in json.loads((path / "metrics.json").read_text()).items()
            if isinstance(v, int | float)
        }
    elif (path / "failure.txt").is_file():
        job.status = "failed"
        lines = (path / "failure.txt").read_text().strip().splitlines()
        job.error = lines[-1] if lines else "unknown error"
    metrics_csv = path / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open() as f:
            for row in csv.DictReader(f):
                for key in CURVES:
                    if row.get(key) and row.get("epoch"):
                        job.curves.setdefault(key, {})[int(row["epoch"])] = float(row[key])
    return job


def find_jobs(sweep_dir: Path) -> tuple[list[Job], list[str]]:
    """All readable jobs below ``sweep_dir`` and a note for each folder skipped."""
    jobs, skipped = [], []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job_dir = hydra_dir.parent
        try:
            jobs.append(read_job(job_dir))
        except Exception as error:  # a half-written folder must not stop the report
            skipped.append(f"{job_dir}: unreadable ({error})")
    for job in jobs:
        if job.status == "incomplete":
            skipped.append(f"{job.path}: no metrics.json yet (running, killed or not started)")
    return jobs, skipped


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def summarise(jobs: list[Job]) -> tuple[list[str], list[dict[str, object]]]:
    """Rows of the report table: one per (data, miner), metrics as mean and std."""
    groups: dict[tuple[str, str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[(job.data, job.model, job.miner)].append(job)
    keys = sorted(
        {k for job in jobs for k in job.metrics if k.split("/")[0] in ("val", "test")},
        key=lambda k: (k.split("/")[0], _metric_rank(k)),
    )
    rows = []
    for (data, model, miner), members in sorted(groups.items()):
        finished = [j for j in members if j.status == "finished"]
        row: dict[str, object] = {
            "data": data,
            "model": model,
            "miner": miner,
            "runs": len(finished),
            "failed": sum(j.status == "failed" for j in members),
            "seeds": " ".join(str(j.seed) for j in sorted(finished, key=lambda j: j.seed)),
        }
        for key in keys:
            values = [j.metrics[key] for j in finished if key in j.metrics]
            mean, std = mean_std(values) if values else (math.nan, math.nan)
            row[f"{key} mean"], row[f"{key} std"] = mean, std
        rows.append(row)
    return keys, rows


def _metric_rank(key: str) -> int:
    name = key.split("/", 1)[1]
    return METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER)


def write_tables(sweep_dir: Path, keys: list[str], rows: list[dict], skipped: list[str]) -> None:
    """``report.csv`` (plain numbers) and ``report.md`` (mean ± std)."""
    if rows:
        with (sweep_dir / "report.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    header = ["data", "model", "miner", "runs", "failed", *keys]
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        "Final metrics, mean ± std over seeds (sample std). `val/` metrics come from the "
        "checkpoint selected on validation; `test/` metrics from the final epoch.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [str(row[c]) for c in ("data", "model", "miner", "runs", "failed")]
        cells += [f"{row[f'{k} mean']:.3f} ± {row[f'{k} std']:.3f}" for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    if skipped:
        lines += ["", "Skipped:", "", *[f"- {s}" for s in skipped]]
    (sweep_dir / "report.md").write_text("\n".join(lines) + "\n")


def plot_curves(sweep_dir: Path, jobs: list[Job]) -> Path | None:
    """``curves.png``: validation metrics per epoch, mean ± std over seeds per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    keys = [key for key in CURVES if any(key in job.curves for job in jobs)]
    datasets = sorted({job.data for job in jobs if job.curves})
    if not keys or not datasets:
        return None
    fig, axes = plt.subplots(
        len(keys), len(datasets), figsize=(6.5 * len(datasets), 4.2 * len(keys)), squeeze=False
    )
    for row, key in enumerate(keys):
        for col, data in enumerate(datasets):
            ax = axes[row][col]
            runs_by_miner: dict[str, list[dict[int, float]]] = defaultdict(list)
            for job in jobs:
                if job.data == data and key in job.curves:
                    label = job.miner if job.model == "metric" else job.model
                    runs_by_miner[label].append(job.curves[key])
            for miner, runs in sorted(runs_by_miner.items()):
                epochs = sorted(set.intersection(*(set(run) for run in runs)))
                values = np.array([[run[e] for e in epochs] for run in runs])
                mean = values.mean(0)
                std = values.std(0, ddof=1) if len(runs) > 1 else np.zeros_like(mean)
                line = ax.plot(epochs, mean, label=f"{miner} (n={len(runs)})")[0]
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            ax.set_title(f"data={data}")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel(CURVES[key])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = sweep_dir / "curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(sweep_dir: Path) -> list[dict]:
    """Write the report files of ``sweep_dir`` and return the table rows."""
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such multirun folder.")
    jobs, skipped = find_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (with a .hydra/ folder) found.")
    keys, rows = summarise(jobs)
    write_tables(sweep_dir, keys, rows, skipped)
    plot = plot_curves(sweep_dir, jobs)
    for job in jobs:
        if job.status == "failed":
            print(f"failed: {job.path.name} (miner={job.miner}, seed={job.seed}): {job.error}")
    for note in skipped:
        print(f"skipped: {note}")
    print((sweep_dir / "report.md").read_text())
    print(
        f"Wrote {sweep_dir / 'report.md'}, {sweep_dir / 'report.csv'}"
        + (f", {plot}" if plot else "")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="a multirun folder (outputs/train/multiruns/…)"
    )
    report(parser.parse_args().sweep_dir)


if __name__ == "__main__":
    main()
