"""The protocol's outputs: ``protocol.csv``, ``protocol.md`` and ``protocol.png``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from src.core.atomic import write_csv as atomic_csv
from src.core.metric_catalogue import REPORTED, short_name
from src.protocol.outcomes import Choice

#: test metrics of every row (means over seeds, with ``<metric>_std`` beside them)
METRICS = tuple(f"test/{name}" for name in REPORTED)
SHORT = {metric: short_name(metric) for metric in METRICS}


def summarise(name: str, kind: str, runs: Sequence[dict], val_score: float, chosen: dict) -> dict:
    """One table row: means and sample stds over ``runs`` (one metrics dict per seed)."""
    row: dict = {"name": name, "kind": kind}
    for metric in METRICS:
        values = np.array([r.get(metric, math.nan) for r in runs], dtype=float)
        row[metric] = float(np.mean(values)) if len(values) else math.nan
        row[f"{metric}_std"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    row["runs"] = len(runs)
    row["val_score"] = val_score
    row["chosen"] = json.dumps(chosen, sort_keys=True)
    return row


def add_search_spread(row: dict, per_search: Sequence[Sequence[dict]]) -> None:
    """``searches`` and ``<metric>_search_std`` of a searched row, in place: the sample std over
    the searches of each search's mean over its refit seeds (``nan`` for one search)."""
    row["searches"] = len(per_search)
    for metric in METRICS:
        means = [np.mean([r.get(metric, math.nan) for r in runs]) for runs in per_search]
        row[f"{metric}_search_std"] = float(np.std(means, ddof=1)) if len(means) > 1 else math.nan


def chosen_settings(chosen: Choice) -> dict:
    """A searched row's ``chosen`` column: its settings, epoch count and γ."""
    return {**chosen.values, "epochs": chosen.best_epoch, "gamma": round(chosen.gamma, 6)}


def columns() -> list[str]:
    return [
        "name",
        "kind",
        *[c for m in METRICS for c in (m, f"{m}_std", f"{m}_ci_low", f"{m}_ci_high")],
        "runs",
        "searches",
        *[f"{m}_search_std" for m in METRICS],
        "val_score",
        "same_as",
        "chosen",
        "code",
    ]


def write_csv(rows: Sequence[dict], path: Path) -> Path:
    from src.core.provenance import provenance

    code = json.dumps(provenance(), sort_keys=True)  # the code that wrote it (commit, dirty)
    lines = ({**{k: row.get(k, "") for k in columns()}, "code": code} for row in rows)
    return atomic_csv(path, columns(), lines)  # whole or absent after a kill


def _cell(row: dict, metric: str) -> str:
    """``mean [low, high]``: the mean over seeds and its bootstrap interval."""
    mean = row[metric]
    if math.isnan(mean):
        return "–"
    low, high = row.get(f"{metric}_ci_low", math.nan), row.get(f"{metric}_ci_high", math.nan)
    return f"{mean:.3f}" if math.isnan(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"


def markdown_table(rows: Sequence[dict]) -> str:
    head = ["row", "kind", *[SHORT[m] for m in METRICS], "val score", "runs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        val = "–" if math.isnan(row["val_score"]) else f"{row['val_score']:.3f}"
        name = f"`{row['name']}`"
        if row.get("same_as"):
            name += f" (= `{row['same_as']}`)"
        cells = [name, row["kind"], *[_cell(row, m) for m in METRICS]]
        lines.append("| " + " | ".join([*cells, val, str(row["runs"])]) + " |")
    return "\n".join(lines)


#: the metrics of the verdicts ``protocol.md`` states (``test/<name>``)
STATED_METRICS = ("zsl_acc", "gzsl_H_cal")


def best_reference(rows: Sequence[dict]) -> dict | None:
    """The reference (or untrained) row with the best validation score, never chosen by a test
    number; a tie goes to the earlier row, a row without a score (nan) comes last."""
    refs = [r for r in rows if r["kind"] in ("reference", "untrained")]
    if not refs:
        return None

    def key(i: int) -> tuple[float, int]:
        score = refs[i]["val_score"]
        return (-math.inf if score != score else score, -i)

    return refs[max(range(len(refs)), key=key)]


def are_aliases(rows: Sequence[dict], a: str, b: str) -> bool:
    """Whether rows ``a`` and ``b`` are the same predictor (``same_as``, :func:`~src.protocol.
    verdicts.mark_aliases`)."""
    named = {r["name"]: r for r in rows}
    root_a = named.get(a, {}).get("same_as") or a
    root_b = named.get(b, {}).get("same_as") or b
    return root_a == root_b


#: the row every trained row faces: does training help at all?
UNTRAINED_ROW = "untrained"
#: references that fit nothing to the data (not asked whether training helped)
NOT_TRAINED = ("nearest_signature", UNTRAINED_ROW)


def against_untrained(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """``(row, "untrained")`` for every tuned row and every trained reference (ESZSL, SAE,
    ALE, DeViSE, SJE, crossed objectives) when the protocol has the untrained metric; the
    ablation rows (``random@…``) repeat a tuned row's setting and are left out."""
    if not any(r["name"] == UNTRAINED_ROW for r in rows):
        return []
    return [
        (r["name"], UNTRAINED_ROW)
        for r in rows
        if r["kind"] == "tuned" or (r["kind"] == "reference" and r["name"] not in NOT_TRAINED)
    ]


def stated_pairs(
    rows: Sequence[dict], best: str, pairs: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The comparisons ``protocol.md`` states as verdicts (one family): the best tuned row
    against the best reference (by validation), then ``pairs``, then every trained row against
    the untrained metric (:func:`against_untrained`); aliases left out."""
    ref = best_reference(rows)
    stated = ([(best, ref["name"])] if ref else []) + list(pairs) + against_untrained(rows)
    return [p for p in dict.fromkeys(stated) if not are_aliases(rows, *p)]


def verdict(
    rows: Sequence[dict],
    best: str,
    pairs: Sequence[tuple[str, str]],
    records: Sequence[dict],
    level: float = 0.95,
    no_training: Mapping[str, str] | None = None,
) -> str:
    """The protocol's questions, each answered with its paired interval (classes resampled)
    and its Holm-adjusted p-value: better, worse, or no detectable difference (the word follows
    ``p_holm`` at 1 − ``level``). ``best`` was chosen on validation, the reference it faces
    too; ``pairs`` are the (mined, random) comparisons; ``records`` those of
    ``comparisons.csv``; ``no_training`` the words added to a row's comparison with
    ``untrained`` when its chosen validation curve stays at or below the untrained metric's
    validation score (:func:`~src.protocol.report.write.no_training_chosen`)."""
    from src.metrics.bootstrap import holm_verdict

    no_training = no_training or {}
    found = {(r["row"], r["against"], r["metric"], r["resampled"]): r for r in records}
    named = {r["name"]: r for r in rows}
    alpha = 1.0 - level

    def line(a: str, b: str, metric: str) -> str:
        text = f"{SHORT[metric]} {named[a][metric]:.3f} vs {named[b][metric]:.3f}"
        record = found.get((a, b, metric, "classes"))
        if record is None:
            return text
        text += f": Δ {record['delta']:+.3f} [{record['ci_low']:+.3f}, {record['ci_high']:+.3f}]"
        if record["prob_improvement"] == record["prob_improvement"]:
            text += f", P(X > Y) = {record['prob_improvement']:.2f}"
        if not record.get("stated"):
            return text
        word = holm_verdict(record["p_holm"], record["delta"], alpha)
        return f"{text}, p = {record['p_value']:.3f}, p_Holm = {record['p_holm']:.3f} → **{word}**"

    def answer(a: str, b: str) -> str:
        if are_aliases(rows, a, b):
            return f"the same predictor (= `{named[b].get('same_as') or b}`): not a verdict"
        return "; ".join(line(a, b, f"test/{m}") for m in STATED_METRICS)

    lines = [f"- Best tuned strategy, chosen on validation: `{best}`."]
    ref = best_reference(rows)
    if ref is not None:
        lines.append(
            f"- `{best}` vs the best reference on validation, `{ref['name']}` (val "
            f"{ref['val_score']:.3f}): {answer(best, ref['name'])}."
        )
    for a, b in pairs:
        lines.append(f"- `{a}` vs `{b}`: {answer(a, b)}.")
    untrained = against_untrained(rows)
    if untrained:
        lines.append("- Does training help at all? Each trained row against `untrained`:")
    for a, b in untrained:
        flat = f" — {no_training[a]}" if a in no_training else ""
        lines.append(f"  - `{a}` vs `{b}`: {answer(a, b)}{flat}.")
    return "\n".join(lines)


def per_class_differences(a: dict, b: dict, runs_a: Sequence[dict], runs_b: Sequence[dict]) -> str:
    """Unseen classes by |difference| of test ZSL accuracy between rows a and b (means over
    seeds), with each class's share of the difference in the mean; the seeds' range beside."""

    def table(runs: Sequence[dict]) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for run in runs:
            for name, acc in run.get("per_class_zsl", {}).items():
                out.setdefault(name, []).append(acc)
        return out

    ta, tb = table(runs_a), table(runs_b)
    names = sorted(ta, key=lambda n: -abs(np.mean(ta[n]) - np.mean(tb.get(n, [np.nan]))))
    lines = [
        f"| unseen class | `{a['name']}` (min–max over seeds) | `{b['name']}` | difference "
        "| share of the ZSL difference |",
        "|---|---|---|---|---|",
    ]
    for name in names[:8]:
        ma, mb = float(np.mean(ta[name])), float(np.mean(tb[name]))
        lines.append(
            f"| {name} | {ma:.3f} ({min(ta[name]):.3f}–{max(ta[name]):.3f}) | {mb:.3f} | "
            f"{ma - mb:+.3f} | {(ma - mb) / len(ta):+.4f} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[dict], title: str, path: Path) -> Path:
    """Bars of test ZSL and calibrated H per row, with their bootstrap intervals (classes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in rows]
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 4.2))
    for offset, metric, colour in ((-0.2, "test/zsl_acc", "C0"), (0.2, "test/gzsl_H_cal", "C1")):
        means = np.array([r[metric] for r in rows])
        low = np.array([r.get(f"{metric}_ci_low", m) for r, m in zip(rows, means, strict=True)])
        high = np.array([r.get(f"{metric}_ci_high", m) for r, m in zip(rows, means, strict=True)])
        errors = np.nan_to_num(np.stack([means - low, high - means]).clip(min=0))
        ax.bar(x + offset, means, 0.4, yerr=errors, capsize=3, color=colour, label=SHORT[metric])
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("test accuracy (per-class mean)")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=9)
    # beside the axes: inside, it would cover the first rows' bars, which reach up to 1
    ax.legend(
        title="mean over seeds,\n95% bootstrap\ninterval",
        fontsize=8,
        title_fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
