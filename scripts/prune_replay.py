"""Replay the studies of unpruned protocols through Optuna's MedianPruner: how many epochs it
would have stopped, and whether the protocol would still choose the same rows.

    python scripts/prune_replay.py outputs/protocol/runs/<run> [<run> …]

Each run must have been searched with ``protocol.pruner=none`` (every trial whole). Its scored
trials are fed, in trial order, to a fresh in-memory study under a pruner, epoch by epoch, the
way :class:`src.protocol.training.PruningReport` reports them: ``running`` (the mean of the folds so
far at that epoch, what the protocol reports) or ``raw`` (each fold's own validation value).
Variants (:func:`pruners`): the protocol's median pruner on both, a percentile pruner keeping
the top third, successive halving, and a search cut to its first 12 trials. A pruned trial
leaves the choice; the survivors are chosen from as the protocol does
(:func:`src.protocol.selection.choose_trial`, ``protocol.smoothing=auto``). Prints a Markdown
table: the share of the search's epochs that run, and how many studies then choose a trial
with a lower validation score than the whole search did.

A replay keeps the trials the unpruned search drew: a real pruned search would draw later
settings from the pruned history, so it estimates the pruner's saving and its effect on the
choice; it does not reproduce a pruned protocol. Validation data only. The last line is one
JSON object.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reports(fold_curves: list[list[float]], mode: str) -> list[tuple[int, float]]:
    """(step, value) of every epoch of every fold, fold k at steps k × epochs + epoch."""
    import numpy as np

    curves = np.asarray(fold_curves, dtype=float)
    folds, epochs = curves.shape
    values = (
        curves if mode == "raw" else np.cumsum(curves, axis=0) / np.arange(1, folds + 1)[:, None]
    )
    return [(k * epochs + e, float(values[k, e])) for k in range(folds) for e in range(epochs)]


def pruners() -> dict:
    """The variants replayed: (how values are reported, the pruner, the trials kept)."""
    import optuna

    from src.protocol.study import PRUNER_STARTUP_TRIALS, PRUNER_WARMUP_EPOCHS, make_pruner

    patience = {"n_startup_trials": PRUNER_STARTUP_TRIALS, "n_warmup_steps": PRUNER_WARMUP_EPOCHS}
    return {
        "median, raw fold values": ("raw", lambda n: make_pruner("median", n), None),
        "median, running mean (the protocol's)": (
            "running",
            lambda n: make_pruner("median", n),
            None,
        ),
        "percentile 33, running mean": (
            "running",
            lambda n: optuna.pruners.PercentilePruner(33.0, **patience),
            None,
        ),
        "successive halving, running mean": (
            "running",
            lambda n: optuna.pruners.SuccessiveHalvingPruner(min_resource=3, reduction_factor=3),
            None,
        ),
        "no pruner, first 12 trials only": ("running", lambda n: optuna.pruners.NopPruner(), 12),
    }


def replay(records: list[dict], mode: str, pruner) -> tuple[float, list[dict]]:
    """(share of the epochs that run, the trials that finish) under ``pruner``."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.create_study(direction="maximize", pruner=pruner)
    ran = total = 0
    kept = []
    for record in records:
        trial, series = study.ask(), reports(record["fold_curves"], mode)
        last, pruned = series[-1][0], False
        total += len(series)
        for step, value in series:
            ran += 1
            trial.report(value, step)
            if step != last and trial.should_prune():
                pruned = True
                break
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, record["score"])
            kept.append(record)
    return ran / total, kept


def main(folders: list[str]) -> dict:
    sys.path.insert(0, str(ROOT))
    import optuna
    from optuna.trial import TrialState

    from src.protocol.selection import choose_trial, selection_window
    from src.protocol.storage import storage_for

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    variants = pruners()
    result: dict = {"studies": []}
    for folder in map(Path, folders):
        databases = sorted(folder.glob("search/*.db")) + sorted(
            folder.glob("searches/*/search/*.db")
        )
        if not databases:
            raise SystemExit(f"{folder}: no search/*.db: give a protocol run folder")
        for db in databases:
            url, name = storage_for(None, db.parent.parent, db.stem)
            trials = sorted(
                optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False),
                key=lambda t: t.number,
            )
            if any("pruned" in t.user_attrs for t in trials):
                raise SystemExit(f"{db}: searched with a pruner; replay an unpruned protocol")
            scored = [
                t
                for t in trials
                if t.state == TrialState.COMPLETE and "fold_gammas" in t.user_attrs
            ]
            records = [t.user_attrs for t in scored]
            full = choose_trial(records, selection_window(records, "auto"))["score"]
            line = {"run": str(folder), "study": str(db.relative_to(folder)), "chosen": full}
            for label, (mode, pruner, first) in variants.items():
                pool = [t.user_attrs for t in scored if first is None or t.number < first]
                share, kept = replay(pool, mode, pruner(len(pool)))
                share *= len(pool) / len(records)  # epochs run against the whole search
                chosen = choose_trial(kept, selection_window(kept, "auto"))["score"]
                line[label] = {
                    "epochs_run": round(share, 3),
                    "chosen_delta": round(chosen - full, 4),
                }
            result["studies"].append(line)
    print("| replayed | epochs run | studies choosing a worse trial | worst Δ (val) |")
    print("|---|---|---|---|")
    for label in variants:
        lines = [s[label] for s in result["studies"]]
        result[label] = {
            "epochs_run": round(sum(x["epochs_run"] for x in lines) / len(lines), 3),
            "studies_chosen_worse": sum(x["chosen_delta"] < 0 for x in lines),
            "worst_delta": min(x["chosen_delta"] for x in lines),
        }
        r = result[label]
        print(
            f"| {label} | {r['epochs_run']:.2f} | {r['studies_chosen_worse']} of {len(lines)} | "
            f"{r['worst_delta']:+.4f} |"
        )
    print(json.dumps({k: v for k, v in result.items() if k != "studies"}))
    return result


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
