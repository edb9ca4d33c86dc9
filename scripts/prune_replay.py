"""Replay the studies of unpruned protocols through Optuna's MedianPruner: how many epochs it
would have stopped, and whether the protocol would still choose the same rows.

    python scripts/prune_replay.py outputs/protocol/runs/<run> [<run> …]

Each run must have been searched with ``protocol.pruner=none`` (every trial whole). Its scored
trials are fed, in trial order, to a fresh in-memory study under the protocol's pruner
(:func:`src.tuning.search.make_pruner`), epoch by epoch, the way
:class:`src.tuning.runs.PruningReport` reports them, in two ways: ``raw`` (each fold's own
validation value) and ``running`` (the mean of the folds so far at that epoch, what the
protocol reports). A pruned trial leaves the choice; the survivors are chosen from as the
protocol does (:func:`src.tuning.selection.choose_trial`, ``protocol.smoothing=auto``).

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
MODES = ("raw", "running")


def reports(fold_curves: list[list[float]], mode: str) -> list[tuple[int, float]]:
    """(step, value) of every epoch of every fold, fold k at steps k × epochs + epoch."""
    import numpy as np

    curves = np.asarray(fold_curves, dtype=float)
    folds, epochs = curves.shape
    values = (
        curves if mode == "raw" else np.cumsum(curves, axis=0) / np.arange(1, folds + 1)[:, None]
    )
    return [(k * epochs + e, float(values[k, e])) for k in range(folds) for e in range(epochs)]


def replay(records: list[dict], mode: str) -> tuple[float, list[dict]]:
    """(share of the epochs that run, the trials that finish) under the median pruner."""
    import optuna
    from optuna.trial import TrialState

    from src.tuning.search import make_pruner

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", len(records)))
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

    from src.tuning.search import finished_records, storage_for
    from src.tuning.selection import choose_trial, selection_window

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    result: dict = {}
    for folder in map(Path, folders):
        databases = sorted(folder.glob("search/*.db")) + sorted(
            folder.glob("searches/*/search/*.db")
        )
        if not databases:
            raise SystemExit(f"{folder}: no search/*.db: give a protocol run folder")
        for db in databases:
            url, name = storage_for(None, db.parent.parent, db.stem)
            study = optuna.load_study(study_name=name, storage=url)
            if any("pruned" in t.user_attrs for t in study.get_trials(deepcopy=False)):
                raise SystemExit(f"{db}: searched with a pruner; replay an unpruned protocol")
            records = finished_records(study)
            full = choose_trial(records, selection_window(records, "auto"))["score"]
            line = {"run": str(folder), "study": str(db.relative_to(folder)), "chosen": full}
            for mode in MODES:
                share, kept = replay(records, mode)
                chosen = choose_trial(kept, selection_window(kept, "auto"))["score"]
                line[mode] = {
                    "epochs_run": round(share, 3),
                    "chosen_delta": round(chosen - full, 4),
                }
            result.setdefault("studies", []).append(line)
            print(
                f"{folder.name}/{line['study']:<44} chosen {full:.4f}  "
                + "  ".join(
                    f"{m}: {line[m]['epochs_run']:.2f} of the epochs, "
                    f"Δ {line[m]['chosen_delta']:+.4f}"
                    for m in MODES
                )
            )
    for mode in MODES:
        lines = [s[mode] for s in result["studies"]]
        result[mode] = {
            "epochs_run": round(sum(x["epochs_run"] for x in lines) / len(lines), 3),
            "studies_chosen_worse": sum(x["chosen_delta"] < 0 for x in lines),
            "worst_delta": min(x["chosen_delta"] for x in lines),
        }
        print(
            f"{mode}: {result[mode]['epochs_run']:.2f} of the epochs run; "
            f"{result[mode]['studies_chosen_worse']} of {len(lines)} studies choose a worse trial "
            f"(worst Δ {result[mode]['worst_delta']:+.4f} on validation)"
        )
    print(json.dumps({k: v for k, v in result.items() if k != "studies"}))
    return result


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
