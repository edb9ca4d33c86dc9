"""Reading a sweep's job folders: their setting, status, final metrics and per-epoch curves.

A job's setting is its dataset, model and miner plus its command-line overrides, except the
seed and the bookkeeping keys that cannot change a result (:data:`NOT_SETTINGS`); only the
overrides whose values differ between the jobs of a sweep name its settings
(:func:`setting_keys`).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from src.runs.marker import job_activity

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


def not_started(sweep_dir: Path) -> list[str]:
    """A note for every job of the sweep's grid that has no folder: the sweep stopped before
    it (or is still running). The grid is rebuilt from ``multirun.yaml`` as Hydra's basic
    sweeper numbers it (:func:`~src.sweeps.check.grid_points`); empty for another sweeper,
    or when ``multirun.yaml`` is missing or unreadable."""
    from src.sweeps.check import grid_points

    try:
        grid = grid_points(OmegaConf.load(sweep_dir / "multirun.yaml"))
    except Exception:  # no multirun.yaml, or one this Hydra cannot parse: no grid to compare
        return []
    if not grid:
        return []
    points = [dict(override_key(o) for o in job) for job in grid]
    varying = [
        k
        for k in dict.fromkeys(k for point in points for k in point)
        if len({point.get(k) for point in points}) > 1
    ]
    missing = [n for n in range(len(grid)) if not (sweep_dir / str(n) / ".hydra").is_dir()]
    notes = []
    for n in missing:
        setting = ", ".join(f"{k}={points[n].get(k, '-')}" for k in varying)
        notes.append(
            f"job {n} ({setting}): not started, no folder (the sweep stopped before it, or is "
            f"still running; resume_sweep={sweep_dir} runs it)"
        )
    return notes


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


def sort_key(setting: tuple[str, ...]) -> tuple:
    """Order of settings: numbers as numbers, before words."""

    def one(value: str) -> tuple:
        try:
            return (0, float(value), "")
        except ValueError:
            return (1, 0.0, value)

    return tuple(one(v) for v in setting)
