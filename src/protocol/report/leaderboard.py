"""One leaderboard over the datasets of a protocol multirun: ``python -m src.report <folder>``.

``python -m src.protocol -m data=apy_annotations,sun,cub,awa1,awa2`` runs one protocol per
dataset, each in a job folder of the multirun folder. :func:`leaderboard` reads every job's
``protocol.csv`` and writes into the multirun folder:

- ``leaderboard.csv``: one line per (dataset, row) with test ZSL and calibrated H (means over
  seeds, bootstrap interval), the validation score, and ``chosen`` on the row validation chose
  for the method (the strategy with the best validation score, as in ``protocol.md``);
- ``leaderboard.md``: the rows × datasets tables of ZSL and of H_cal, the chosen row marked ★,
  the references beside it;
- ``leaderboard.png``: one panel per dataset, ZSL and H_cal bars with their intervals.

A job without ``protocol.csv`` (running, stopped or failed) is named, not tabled.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from omegaconf import OmegaConf

#: the leaderboard's metrics and their names
METRICS = {"test/zsl_acc": "ZSL", "test/gzsl_H_cal": "H_cal"}
COLUMNS = [
    "dataset",
    "row",
    "kind",
    *[f"{m}{suffix}" for m in METRICS for suffix in ("", "_ci_low", "_ci_high")],
    "val_score",
    "chosen",
    "best_reference",
    "folder",
]


def protocol_jobs(folder: Path) -> list[Path]:
    """The job folders of a protocol multirun (each holds ``protocol_config.yaml``), by number."""
    jobs = [p.parent for p in folder.glob("*/protocol_config.yaml")]
    return sorted(
        jobs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name)
    )


def is_protocol_multirun(folder: Path) -> bool:
    return folder.is_dir() and bool(protocol_jobs(folder))


def dataset_label(job: Path) -> str:
    """The job's dataset as its command gave it: ``apy_annotations``, ``synthetic like=cub``,
    ``cub signatures=text`` (the ``data=`` choice and any ``data.*`` override)."""
    overrides = job / ".hydra" / "overrides.yaml"
    items = [str(o) for o in OmegaConf.load(overrides)] if overrides.is_file() else []
    choice = next((o.split("=", 1)[1] for o in items if o.startswith("data=")), None)
    if choice is None:
        hydra = job / ".hydra" / "hydra.yaml"
        choices = OmegaConf.load(hydra).hydra.runtime.choices if hydra.is_file() else {}
        choice = str(choices.get("data", job.name))
    extra = [o.removeprefix("data.") for o in items if o.startswith("data.")]
    return " ".join([choice, *extra])


def _number(text: str) -> float:
    return float(text) if text not in ("", None) else math.nan


def _score(text: str) -> float:
    """A validation score to maximise (a missing one last)."""
    value = _number(text)
    return -math.inf if math.isnan(value) else value


def job_rows(job: Path) -> list[dict]:
    """The leaderboard lines of one finished job, the chosen row marked."""
    config = OmegaConf.load(job / "protocol_config.yaml")
    strategies = [str(s) for s in config.protocol.strategies]
    with (job / "protocol.csv").open(newline="") as f:
        table = list(csv.DictReader(f))
    scores = {r["name"]: _number(r["val_score"]) for r in table if r["name"] in strategies}
    chosen = max(strategies, key=lambda s: scores.get(s, -math.inf))  # as src.protocol's best
    refs = [r for r in table if r["kind"] in ("reference", "untrained")]
    best_ref = max(  # on validation, as protocol.md's verdicts (a tie: the earlier row)
        range(len(refs)),
        key=lambda i: (_score(refs[i]["val_score"]), -i),
        default=None,
    )
    best_ref_name = refs[best_ref]["name"] if best_ref is not None else None
    label = dataset_label(job)
    rows = []
    for r in table:
        row = {"dataset": label, "row": r["name"], "kind": r["kind"], "folder": job.name}
        for metric in METRICS:
            for suffix in ("", "_ci_low", "_ci_high"):
                row[f"{metric}{suffix}"] = _number(r.get(f"{metric}{suffix}", ""))
        row["val_score"] = _number(r["val_score"])
        row["chosen"] = r["name"] == chosen
        row["best_reference"] = r["name"] == best_ref_name
        rows.append(row)
    return rows


def _cell(row: dict | None, metric: str) -> str:
    if row is None or math.isnan(row[metric]):
        return "–"
    low, high = row[f"{metric}_ci_low"], row[f"{metric}_ci_high"]
    text = f"{row[metric]:.3f}" + ("" if math.isnan(low) else f" [{low:.3f}, {high:.3f}]")
    if row["best_reference"]:
        text += " †"
    return f"**{text}** ★" if row["chosen"] else text


def markdown(rows: list[dict], datasets: list[str], missing: list[str]) -> str:
    """The rows × datasets tables of ZSL and H_cal; the chosen rows marked."""
    names = list(dict.fromkeys(r["row"] for r in rows))  # first-seen order: the protocol's
    kind = {r["row"]: r["kind"] for r in rows}
    found = {(r["dataset"], r["row"]): r for r in rows}
    parts = [
        "# Leaderboard",
        f"{len(datasets)} datasets, one protocol each (`protocol.md` in each job folder). Test "
        "metrics: means over the refit seeds with their bootstrap interval (classes "
        "resampled); ★ marks each dataset's validation-chosen row (the strategy with the best "
        "validation score), † the reference with the best validation score (the one its verdicts "
        "face); the references ran on the same splits.",
    ]
    for metric, short in METRICS.items():
        head = ["row", "kind", *datasets]
        lines = [f"## {short}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for name in names:
            cells = [_cell(found.get((d, name)), metric) for d in datasets]
            lines.append("| " + " | ".join([f"`{name}`", kind[name], *cells]) + " |")
        parts.append("\n".join(lines))
    chosen = [f"- {r['dataset']}: `{r['row']}`" for r in rows if r["chosen"]]
    parts.append("Chosen on validation:\n" + "\n".join(chosen))
    if missing:
        parts.append("Not in the table (no `protocol.csv` yet):\n" + "\n".join(missing))
    return "\n\n".join(parts) + "\n"


def plot(rows: list[dict], datasets: list[str], path: Path) -> Path:
    """One panel per dataset: ZSL and H_cal bars per row with their intervals; ★ on the chosen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(
        len(datasets), 1, figsize=(10, 3.2 * len(datasets)), squeeze=False, sharey=True
    )
    for ax, dataset in zip(axes[:, 0], datasets, strict=True):
        mine = [r for r in rows if r["dataset"] == dataset]
        x = np.arange(len(mine))
        for offset, (metric, short), colour in zip(
            (-0.2, 0.2), METRICS.items(), ("C0", "C1"), strict=True
        ):
            means = np.array([r[metric] for r in mine])
            low = np.array([r[f"{metric}_ci_low"] for r in mine])
            high = np.array([r[f"{metric}_ci_high"] for r in mine])
            low, high = np.where(np.isnan(low), means, low), np.where(np.isnan(high), means, high)
            errors = np.nan_to_num(np.stack([means - low, high - means]).clip(min=0))
            ax.bar(x + offset, means, 0.4, yerr=errors, capsize=2, color=colour, label=short)
        labels = [("★ " if r["chosen"] else "") + r["row"] for r in mine]
        ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
        ax.set_ylim(0, 1)
        ax.set_title(dataset, fontsize=9)
        ax.set_ylabel("test accuracy")
    axes[0, 0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def leaderboard(folder: Path) -> list[dict]:
    """Write ``leaderboard.csv``, ``.md`` and ``.png`` into the multirun ``folder``; the rows."""
    rows, datasets, missing = [], [], []
    for job in protocol_jobs(folder):
        if not (job / "protocol.csv").is_file():
            missing.append(f"- job {job.name} ({dataset_label(job)})")
            continue
        mine = job_rows(job)
        rows += mine
        datasets.append(mine[0]["dataset"])
    if not rows:
        raise FileNotFoundError(
            f"{folder}: no finished protocol (no job folder holds protocol.csv yet)."
        )
    tmp = folder / ".leaderboard.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(folder / "leaderboard.csv")
    text = markdown(rows, datasets, missing)
    (folder / "leaderboard.md").write_text(text)
    png = plot(rows, datasets, folder / "leaderboard.png")
    print(text)
    print(f"Wrote {folder / 'leaderboard.md'}, {folder / 'leaderboard.csv'}, {png}")
    return rows
