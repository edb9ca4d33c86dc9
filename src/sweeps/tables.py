"""The report table: one row per setting, final metrics as mean ± sample std over its seeds.

Written as ``report.csv`` (plain numbers; the std of a single run is ``nan``) and ``report.md``
(mean ± std, ``± –`` for a single run, with the failed and the not-yet-finished jobs listed
under the table).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from src.sweeps.jobs import BASE_COLUMNS, Job, setting_keys, setting_of, sort_key

METRIC_ORDER = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std; the std of a single run is NaN (one run has no spread)."""
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else math.nan


def mean_pm_std(mean: float, std: float) -> str:
    """``0.914 ± 0.008``; ``0.914 ± –`` where there is no spread to show (one run)."""
    return f"{mean:.3f} ± {'–' if math.isnan(std) else f'{std:.3f}'}"


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
    for setting in sorted(groups, key=sort_key):
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
        cells += [mean_pm_std(row[f"{k} mean"], row[f"{k} std"]) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    if failed:
        lines += ["", "Failed:", "", *[f"- {s}" for s in failed]]
    if skipped:
        lines += ["", "Not in the table (no results yet):", "", *[f"- {s}" for s in skipped]]
    if notes:
        lines += ["", *notes]
    (sweep_dir / "report.md").write_text("\n".join(lines) + "\n")
