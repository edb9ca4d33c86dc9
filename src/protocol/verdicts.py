"""Intervals on every number of ``protocol.csv`` and the comparisons of ``comparisons.csv``.

Every row's test evaluations are read back from the distances the protocol kept
(``references/<name>.npz``, ``refit/<row>/seed<k>.npz``; :mod:`src.protocol.kept`), so the
intervals come from the same predictions as the table and can be recomputed from the folder
alone (:mod:`src.protocol.report.recompute`). One resampling plan per kind (``classes``: the
test classes resampled with replacement; ``images``: the images within each class) is shared
by every row and every seed: a row's value in a resample is the mean over its refits, and two
rows are compared on the same resamples (paired). Settings: ``protocol.bootstrap.{resamples, seed,
level}``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.core.atomic import write_csv
from src.core.metric_catalogue import REPORTED
from src.metrics.bootstrap import (
    RESAMPLED,
    Credits,
    class_accuracies,
    class_weights,
    compare,
    holm,
    interval,
    make_plan,
    pooled,
    prob_improvement,
    search_plan,
)
from src.protocol.inputs import Inputs
from src.protocol.kept import (
    check_one_test_set,
    load_credits,
    load_scores,
    prediction_files,
    search_folders,
)
from src.protocol.outcomes import Verdicts
from src.protocol.report.results import STATED_METRICS, against_untrained, stated_pairs
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Workspace

#: protocol.csv's metrics (``test/<name>``) and their resampled names
COLUMNS = REPORTED
COMPARISON_COLUMNS = (
    "row", "against", "metric", "delta", "ci_low", "ci_high", "share_positive", "p_value",
    "stated", "p_holm", "prob_improvement", "prob_improvement_ci_low",
    "prob_improvement_ci_high", "resampled",
)  # fmt: skip
#: two rows are aliases when, image by image, their z-scored test distances agree to this
ALIAS_ATOL = 1e-3


def make_plans(runs: dict[str, list[Credits]], resamples: int, seed: int) -> dict:
    """One plan per resampling kind, shared by every row (seeds ``seed``, ``seed + 1``)."""
    example = next(iter(runs.values()))[0]
    return {
        resampled: make_plan(example, resampled, resamples, seed + k)
        for k, resampled in enumerate(RESAMPLED)
    }


def resampled_rows(
    runs: dict[str, list[Credits]],
    resamples: int,
    seed: int,
    plans: dict | None = None,
    searches: int = 1,
) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """``{resampled: {row: {metric: values per resample}}}`` on plans shared by every row; with
    ``searches`` > 1 the searches are resampled too (the two-level bootstrap, seed
    ``seed + 2``, the same search draws for every row and both kinds)."""
    plans = plans or make_plans(runs, resamples, seed)
    drawn = search_plan(searches, resamples, seed + len(RESAMPLED))
    return {
        resampled: {name: pooled(credits, plan, drawn) for name, credits in runs.items()}
        for resampled, plan in plans.items()
    }


def add_intervals(rows: list[dict], samples: dict, level: float) -> None:
    """``test/<metric>_ci_low`` / ``_ci_high`` of every row (classes resampled), in place."""
    for row in rows:
        for metric in COLUMNS:
            low, high = interval(samples["classes"][row["name"]][metric], level)
            row[f"test/{metric}_ci_low"], row[f"test/{metric}_ci_high"] = low, high


def _z_scored(paths: Sequence[Path]) -> list[np.ndarray]:
    """Every kept evaluation's test distances (seen then unseen images × classes), each image's
    row z-scored: equal for two predictors whose distances differ by a positive affine map per
    image (same rankings, same predictions at γ = 0)."""
    out = []
    for path in paths:
        scores = load_scores(path)[0]
        d = np.concatenate(
            [scores.seen_distances.double().numpy(), scores.unseen_distances.double().numpy()]
        )
        centred = d - d.mean(axis=1, keepdims=True)
        spread = centred.std(axis=1, keepdims=True)
        out.append(centred / np.where(spread > 0, spread, 1.0))
    return out


def mark_aliases(rows: list[dict], files: dict[str, list[Path]]) -> None:
    """``same_as`` of every row, in place: the first earlier row whose every kept evaluation
    (the same number of them, in seed order) agrees with this row's up to a positive affine map
    of each image's distances (:data:`ALIAS_ATOL` on z-scores), e.g. the untrained metric and
    nearest signature when d = k, or ``random`` and ``random_fixed`` when both chose the same
    setting; ``""`` when none does. Comparing two aliases is not a verdict."""
    seen: list[tuple[str, list[np.ndarray]]] = []
    for row in rows:
        row["same_as"] = ""
        mine = _z_scored(files[row["name"]])
        for name, theirs in seen:
            if len(theirs) == len(mine) and all(
                a.shape == b.shape and np.abs(a - b).max() <= ALIAS_ATOL
                for a, b in zip(mine, theirs, strict=True)
            ):
                row["same_as"] = name
                break
        if not row["same_as"]:
            seen.append((row["name"], mine))


def comparison_pairs(
    settings: ProtocolSettings,
    rows: list[dict],
    best: str,
    pairs: Sequence[tuple[str, str]],
) -> list[tuple[str, str]]:
    """What ``comparisons.csv`` holds: the best tuned row against every reference, every other
    strategy against ``random``, each mined strategy against ``random@`` it, each crossed
    objective's mined rows against its ``random`` row (``pairs``), and every trained row
    against ``untrained``."""
    refs = [r["name"] for r in rows if r["kind"] in ("reference", "untrained")]
    out = [(best, ref) for ref in refs]
    if "random" in settings.strategies:
        out += [(s, "random") for s in settings.strategies if s != "random"]
    out += list(pairs)
    out += against_untrained(rows)  # does training help at all?
    return list(dict.fromkeys(out))


def comparisons(
    pairs: Sequence[tuple[str, str]],
    rows: list[dict],
    samples: dict,
    level: float,
    stated: Sequence[tuple[str, str]] = (),
    runs: dict[str, list[Credits]] | None = None,
    class_plan: Any = None,
) -> list[dict]:
    """One record per pair, metric and resampling kind (the columns of ``comparisons.csv``).

    The records of ``stated`` pairs on :data:`~src.protocol.report.results.STATED_METRICS`, classes
    resampled, are the verdicts ``protocol.md`` states: one family, whose p-values are
    Holm-adjusted together (``p_holm``; empty for the other records). With ``runs`` and the
    ``class_plan``, ``prob_improvement`` is P(X > Y) over the paired test classes with its
    interval over the same class resamples (classes resampled only)."""
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
                record.update(prob_improvement=np.nan, prob_improvement_ci_low=np.nan,
                              prob_improvement_ci_high=np.nan, p_holm=np.nan)  # fmt: skip
                x = class_accuracies(runs[a], metric) if runs else None
                if x is not None and resampled == "classes" and class_plan is not None:
                    y = class_accuracies(runs[b], metric)
                    low, high = interval(
                        prob_improvement(x, y, class_weights(class_plan, metric)), level
                    )
                    record["prob_improvement"] = prob_improvement(x, y)
                    record["prob_improvement_ci_low"] = low
                    record["prob_improvement_ci_high"] = high
                is_stated = (a, b) in stated and metric in STATED_METRICS and resampled == "classes"
                out.append(
                    {"row": a, "against": b, "metric": f"test/{metric}", **record,
                     "stated": is_stated, "resampled": resampled}
                )  # fmt: skip
    family = [r for r in out if r["stated"]]
    for record, adjusted in zip(family, holm([r["p_value"] for r in family]), strict=True):
        record["p_holm"] = adjusted
    return out


def write_comparisons(records: Sequence[dict], path: Path) -> Path:
    """``comparisons.csv``, written whole or not at all."""
    rows = ({k: record[k] for k in COMPARISON_COLUMNS} for record in records)
    return write_csv(path, COMPARISON_COLUMNS, rows)


def intervals_and_comparisons(
    settings: ProtocolSettings,
    workspace: Workspace,
    inputs: Inputs,
    rows: list[dict],
    best: str,
    pairs: Sequence[tuple[str, str]],
) -> Verdicts:
    """The rows with their intervals and ``same_as``, and the comparisons (the protocol's last
    step before the report): ``best`` is the strategy chosen on validation, ``pairs`` the
    comparisons stated besides the defaults."""
    resamples, seed, level = dataclasses.astuple(settings.bootstrap)
    rows = [dict(row) for row in rows]
    folder = workspace.folder
    folders = search_folders(folder, settings, inputs.seed)
    files = {
        r["name"]: prediction_files(folder, r["name"], r["kind"], settings.seeds, folders)
        for r in rows
    }
    keys: dict[Path, str] = {}
    runs = {name: load_credits(paths, keys) for name, paths in files.items()}
    check_one_test_set(keys)
    mark_aliases(rows, files)
    plans = make_plans(runs, resamples, seed)
    samples = resampled_rows(runs, resamples, seed, plans, settings.searches)
    add_intervals(rows, samples, level)
    stated = stated_pairs(rows, best, pairs)
    records = comparisons(
        comparison_pairs(settings, rows, best, pairs), rows, samples, level, stated, runs,
        plans["classes"],
    )  # fmt: skip
    return Verdicts(rows=rows, comparisons=records)
