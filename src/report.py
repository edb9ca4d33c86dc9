"""Aggregate a multirun: ``python -m src.report <multirun folder>``.

Reads every job folder of the sweep (its Hydra config and command-line overrides,
``metrics.json``, ``failure.txt`` and ``csv/metrics.csv``) and writes into the sweep folder:

- ``report.csv`` and ``report.md``: one row per distinct setting, with the final metrics as
  mean ± sample std over the seeds of that setting, the seeds themselves, the number of finished
  runs and of failed runs. A setting is the dataset, model and miner plus every command-line
  override whose value differs between the jobs, except ``seed`` (and bookkeeping keys that
  cannot change a result: :data:`NOT_SETTINGS`). Two grid points that differ only in, say,
  ``miner.num_negatives`` are two rows; the trials of an Optuna search are one row each.
- ``curves.png``: per epoch, one curve per setting (mean over its seeds) with a shaded ± 1 sample
  std band: validation ZSL accuracy and GZSL H when the jobs validated (``data.split_mode=val``),
  otherwise what a test-mode job logs per epoch: the training loss and the ``pool/``
  diagnostics.

Works on a sweep that is still running or was cut short: the jobs without results are named,
as running, interrupted or unreadable, and left out of the table.
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

from src.utils.run_folder import job_activity

VAL_CURVES = {"val/zsl_acc": "validation ZSL accuracy", "val/gzsl_H": "validation GZSL H"}
#: what a test-mode job logs per epoch (pool/refresh_s is a timing, not a learning curve)
TRAIN_CURVES = {
    "train/loss": "training loss",
    "pool/mean_d_pos": "pool: mean D of positives",
    "pool/mean_d_neg": "pool: mean D of pool negatives",
    "pool/wrong_side_fraction": "pool: negatives closer than b",
    "pool/changed_fraction": "pool: share changed since last refresh",
}
CURVES = {**VAL_CURVES, **TRAIN_CURVES}
METRIC_ORDER = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H")
#: columns naming the setting, always present
BASE_COLUMNS = ("data", "model", "miner")
#: overrides that never make two jobs different settings: the seed (aggregated over) and
#: bookkeeping that cannot change a result (prefixes end with a dot)
NOT_SETTINGS = (
    "seed",
    "resume_sweep",
    "ckpt_path",
    "overwrite",
    "print_config",
    "tags",
    "logger",
    "logger.",
    "paths.",
    "hydra.",
    "callbacks.rich_progress_bar",
)
BAND_NOTE = "line: mean over seeds; shaded band: ± 1 sample std over seeds (none when n = 1)"
NO_VAL_CURVES = (
    "No validation curves: the jobs ran with data.split_mode=test (no validation loop), so "
    "curves.png shows the training loss and the pool diagnostics per epoch; run the sweep with "
    "data.split_mode=val for validation curves."
)


@dataclass
class Job:
    """One job folder of a sweep."""

    path: Path
    data: str
    model: str
    miner: str
    seed: int
    status: str  # finished | failed | running | interrupted | incomplete
    overrides: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, dict[int, float]] = field(default_factory=dict)
    error: str = ""
    note: str = ""


def override_key(override: str) -> tuple[str, str]:
    """``("miner.num_negatives", "2")`` of ``"miner.num_negatives=2"`` (``+``/``~`` dropped)."""
    key, _, value = override.partition("=")
    return key.lstrip("+~"), value


def is_setting(key: str) -> bool:
    return (
        not any(key == p or (p.endswith(".") and key.startswith(p)) for p in NOT_SETTINGS)
        and key not in BASE_COLUMNS
    )


def read_job(path: Path) -> Job:
    """Read a job folder written by ``src.train``."""
    hydra_cfg = OmegaConf.load(path / ".hydra" / "hydra.yaml").hydra
    cfg = OmegaConf.load(path / ".hydra" / "config.yaml")
    choices = hydra_cfg.runtime.choices
    model = str(choices.get("model", "metric"))
    # Baselines ignore the miner: name them by the model alone.
    miner = str(choices.get("miner")) if model == "metric" else "-"
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = OmegaConf.load(overrides_file) if overrides_file.is_file() else []
    job = Job(path, str(choices.get("data")), model, miner, int(cfg.seed), "incomplete")
    job.overrides = dict(override_key(str(o)) for o in overrides)
    if (path / "metrics.json").is_file():
        job.status = "finished"
        job.metrics = {
            k: v
            for k, v in json.loads((path / "metrics.json").read_text()).items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
    elif (path / "failure.txt").is_file():
        job.status = "failed"
        lines = (path / "failure.txt").read_text().strip().splitlines()
        job.error = lines[-1] if lines else "unknown error"
    else:
        job.status, job.note = job_activity(path)
    metrics_csv = path / "csv" / "metrics.csv"
    if metrics_csv.is_file():
        with metrics_csv.open() as f:
            for row in csv.DictReader(f):
                for key in CURVES:
                    if row.get(key) and row.get("epoch"):
                        job.curves.setdefault(key, {})[int(row["epoch"])] = float(row[key])
    return job


def find_jobs(sweep_dir: Path) -> tuple[list[Job], list[str]]:
    """All readable jobs below ``sweep_dir`` and a note for each job left out of the table."""
    jobs, skipped = [], []
    for hydra_dir in sorted(sweep_dir.rglob(".hydra")):
        job_dir = hydra_dir.parent
        try:
            jobs.append(read_job(job_dir))
        except Exception as error:  # a half-written folder must not stop the report
            skipped.append(f"{job_dir.name}: unreadable ({type(error).__name__}: {error})")
    settings = setting_keys(jobs)
    for job in jobs:
        if job.status in ("running", "interrupted", "incomplete"):
            skipped.append(
                f"{job_label(job, settings)}: {job.status}, no metrics.json ({job.note})"
            )
    return jobs, skipped


def setting_keys(jobs: list[Job]) -> list[str]:
    """The overrides whose values differ between ``jobs`` (sorted), seed and bookkeeping aside."""
    keys = {k for job in jobs for k in job.overrides if is_setting(k)}
    return sorted(k for k in keys if len({job.overrides.get(k) for job in jobs}) > 1)


def job_label(job: Job, settings: list[str]) -> str:
    """``3 (miner=hardest, miner.num_negatives=2, seed=3)``: the job folder and its setting."""
    parts = [f"miner={job.miner}" if job.model == "metric" else f"model={job.model}"]
    parts += [f"{k}={job.overrides.get(k, '-')}" for k in settings]
    return f"{job.path.name} ({', '.join([*parts, f'seed={job.seed}'])})"


def setting_of(job: Job, settings: list[str]) -> tuple[str, ...]:
    return (job.data, job.model, job.miner, *(job.overrides.get(k, "-") for k in settings))


def _sort_key(setting: tuple[str, ...]) -> tuple:
    def one(value: str) -> tuple:
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value)

    return tuple(one(v) for v in setting)


def mean_std(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def metric_keys(jobs: list[Job]) -> list[str]:
    """Final ``val/`` and ``test/`` metrics, in a fixed order (main metrics first, then by name)."""
    keys = {k for job in jobs for k in job.metrics if k.split("/")[0] in ("val", "test")}
    return sorted(keys, key=lambda k: (k.split("/")[0], _metric_rank(k), k))


def summarise(jobs: list[Job]) -> tuple[list[str], list[dict[str, object]]]:
    """Rows of the report table: one per setting, metrics as mean and std over its seeds."""
    settings = setting_keys(jobs)
    groups: dict[tuple[str, ...], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[setting_of(job, settings)].append(job)
    keys = metric_keys(jobs)
    rows = []
    for setting in sorted(groups, key=_sort_key):
        members = groups[setting]
        finished = sorted((j for j in members if j.status == "finished"), key=lambda j: j.seed)
        row: dict[str, object] = dict(zip((*BASE_COLUMNS, *settings), setting, strict=True))
        row.update(
            {
                "runs": len(finished),
                "failed": sum(j.status == "failed" for j in members),
                "seeds": " ".join(str(j.seed) for j in finished),
            }
        )
        for key in keys:
            values = [j.metrics[key] for j in finished if key in j.metrics]
            mean, std = mean_std(values) if values else (math.nan, math.nan)
            row[f"{key} mean"], row[f"{key} std"] = mean, std
        rows.append(row)
    return keys, rows


def _metric_rank(key: str) -> int:
    name = key.split("/", 1)[1]
    return METRIC_ORDER.index(name) if name in METRIC_ORDER else len(METRIC_ORDER)


def write_tables(
    sweep_dir: Path,
    keys: list[str],
    rows: list[dict],
    skipped: list[str],
    failed: list[str] = (),
    notes: list[str] = (),
) -> None:
    """``report.csv`` (plain numbers) and ``report.md`` (mean ± std)."""
    if rows:
        with (sweep_dir / "report.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    names = [c for c in (rows[0] if rows else BASE_COLUMNS) if not c.endswith((" mean", " std"))]
    header = [*names, *[f"{k} (mean ± std)" for k in keys]]
    lines = [
        f"# Sweep report: {sweep_dir.name}",
        "",
        "One row per setting (dataset, model, miner and every override that differs between the "
        "jobs, seed aside). Final metrics, mean ± sample std over the seeds listed; `val/` "
        "metrics come from the checkpoint selected on validation, `test/` metrics from the "
        "final epoch.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in rows:
        cells = [str(row[c]) for c in names]
        cells += [f"{row[f'{k} mean']:.3f} ± {row[f'{k} std']:.3f}" for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "Failed:", "", *[f"- {s}" for s in failed]]
    if skipped:
        lines += ["", "Not in the table (no results yet):", "", *[f"- {s}" for s in skipped]]
    if notes:
        lines += ["", *notes]
    (sweep_dir / "report.md").write_text("\n".join(lines) + "\n")


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
            for job in jobs:
                if job.data == data and key in job.curves:
                    runs[setting_of(job, settings)].append(job.curves[key])
            for setting in sorted(runs, key=_sort_key):
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
                line = ax.plot(epochs, mean, label=label)[0]
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.15)
            ax.set_title(f"data={data}")
            ax.set_xlabel("epoch")
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


def report(sweep_dir: Path) -> list[dict]:
    """Write the report files of ``sweep_dir`` and return the table rows."""
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such multirun folder.")
    jobs, skipped = find_jobs(sweep_dir)
    if not jobs:
        raise FileNotFoundError(f"{sweep_dir}: no job folders (with a .hydra/ folder) found.")
    keys, rows = summarise(jobs)
    settings = setting_keys(jobs)
    failed = [f"{job_label(j, settings)}: {j.error}" for j in jobs if j.status == "failed"]
    notes = []
    if any(job.curves for job in jobs) and not any(k in VAL_CURVES for k in curve_keys(jobs)):
        notes.append(NO_VAL_CURVES)
    write_tables(sweep_dir, keys, rows, skipped, failed, notes)
    plot = plot_curves(sweep_dir, jobs)
    for line in failed:
        print(f"failed: {line}")
    for note in skipped:
        print(f"not in the table: {note}")
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
