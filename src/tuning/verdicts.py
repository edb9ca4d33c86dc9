"""Intervals on every number of ``protocol.csv`` and the comparisons of ``comparisons.csv``.

Every row's test evaluations are read back from the distances the protocol kept
(``references/<name>.npz``, ``refit/<row>/seed<k>.npz``; :mod:`src.tuning.kept`), so the
intervals come from the same predictions as the table and can be recomputed from the folder
alone (:mod:`src.tuning.recompute`). One resampling plan per kind (``classes``: the test classes
resampled with replacement; ``images``: the images within each class) is shared by every row
and every seed: a row's value in a resample is the mean over its refits, and two rows are
compared on the same resamples (paired). Settings: ``protocol.bootstrap.{resamples, seed,
level}``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.metrics.bootstrap import (
    RESAMPLED,
    Credits,
    compare,
    credits_from_scores,
    interval,
    make_plan,
    pooled,
)
from src.tuning.kept import load_scores

#: protocol.csv's metrics (``test/<name>``) and their resampled names
COLUMNS = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H", "gzsl_H_cal", "ausuc")
COMPARISON_COLUMNS = (
    "row", "against", "metric", "delta", "ci_low", "ci_high", "p_improvement", "resampled",
)  # fmt: skip


def bootstrap_settings(p: Any) -> tuple[int, int, float]:
    """(resamples, seed, level) of ``protocol.bootstrap`` (defaults 2000, 0, 0.95)."""
    b = p.get("bootstrap") or {}
    return int(b.get("resamples", 2000)), int(b.get("seed", 0)), float(b.get("level", 0.95))


def prediction_files(folder: Path, name: str, kind: str, seeds: Sequence[int]) -> list[Path]:
    """The kept test distances of one row: a reference's file, or one per refit seed."""
    if kind in ("reference", "untrained") and not (folder / "refit" / name).is_dir():
        return [folder / "references" / f"{name}.npz"]  # evaluated once (no training seeds)
    return [folder / "refit" / name / f"seed{int(s)}.npz" for s in seeds]


def load_credits(paths: Sequence[Path]) -> list[Credits]:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"kept test predictions missing: {', '.join(missing)} (a protocol folder written "
            "before they were kept: run the protocol again in a new folder)."
        )
    return [credits_from_scores(*load_scores(p)[:2]) for p in paths]


def resampled_rows(
    runs: dict[str, list[Credits]], resamples: int, seed: int
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{resampled: {row: {metric: values per resample}}}`` on plans shared by every row."""
    example = next(iter(runs.values()))[0]
    out = {}
    for k, resampled in enumerate(RESAMPLED):
        plan = make_plan(example, resampled, resamples, seed + k)
        out[resampled] = {name: pooled(credits, plan) for name, credits in runs.items()}
    return out


def add_intervals(rows: list[dict], samples: dict, level: float) -> None:
    """``test/<metric>_ci_low`` / ``_ci_high`` of every row (classes resampled), in place."""
    for row in rows:
        for metric in COLUMNS:
            low, high = interval(samples["classes"][row["name"]][metric], level)
            row[f"test/{metric}_ci_low"], row[f"test/{metric}_ci_high"] = low, high


def comparison_pairs(protocol: Any, rows: list[dict]) -> list[tuple[str, str]]:
    """What ``protocol.md`` states: the best tuned row against every reference, every other
    strategy against ``random``, each mined strategy against ``random@`` it, and each crossed
    objective's mined rows against its ``random`` row (``protocol.pairs``)."""
    refs = [r["name"] for r in rows if r["kind"] in ("reference", "untrained")]
    pairs = [(protocol.best, ref) for ref in refs]
    if "random" in protocol.p.strategies:
        pairs += [(s, "random") for s in protocol.p.strategies if s != "random"]
    pairs += list(protocol.pairs)
    return list(dict.fromkeys(pairs))


def comparisons(
    pairs: Sequence[tuple[str, str]], rows: list[dict], samples: dict, level: float
) -> list[dict]:
    """One record per pair, metric and resampling kind (the columns of ``comparisons.csv``)."""
    by_name = {r["name"]: r for r in rows}
    out = []
    for a, b in pairs:
        for resampled in RESAMPLED:
            for metric in COLUMNS:
                values_a = samples[resampled][a][metric]
                values_b = samples[resampled][b][metric]
                if np.isnan(values_a).any() or np.isnan(values_b).any():
                    continue  # not resampled this way (AUSUC over images)
                delta = by_name[a][f"test/{metric}"] - by_name[b][f"test/{metric}"]
                record = compare(values_a, values_b, delta, level)
                out.append(
                    {"row": a, "against": b, "metric": f"test/{metric}", **record,
                     "resampled": resampled}
                )  # fmt: skip
    return out


def write_comparisons(records: Sequence[dict], path: Path) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")  # whole or absent after a kill
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COMPARISON_COLUMNS)
        writer.writeheader()
        for record in records:
            writer.writerow({k: record[k] for k in COMPARISON_COLUMNS})
    tmp.replace(path)
    return path


def intervals_and_comparisons(protocol: Any, rows: list[dict]) -> list[dict]:
    """Add the intervals to ``rows``; return the comparisons (the protocol's last step)."""
    resamples, seed, level = bootstrap_settings(protocol.p)
    runs = {
        r["name"]: load_credits(
            prediction_files(protocol.folder, r["name"], r["kind"], protocol.p.seeds)
        )
        for r in rows
    }
    samples = resampled_rows(runs, resamples, seed)
    add_intervals(rows, samples, level)
    return comparisons(comparison_pairs(protocol, rows), rows, samples, level)
