"""Issue 36, item 7: ``protocol.pruner=median`` stops hopeless trials early.

A trial reports its validation score after every epoch of every fold (fold k at steps
``k × max_epochs + epoch``); Optuna's MedianPruner stops it when it falls below the median of
the finished trials at that step. A pruned trial is never chosen, the chosen one has its whole
curve, and a study killed inside a trial and continued prunes exactly as the uninterrupted one.
The fast cases use a score function shaped like ``score_setting``; the slow one trains.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from test_protocol_continuation import DEFAULTS, MINER, Killed, complete, context

import src.tuning.search as search
from src.tuning.search import finished_records, make_pruner, run_study

N_TRIALS = 14
EPOCHS = 4


def curve_of(values: dict) -> list[float]:
    """A learning curve whose height is best near lr = 1e-3 (a function of the setting)."""
    height = 1 / (1 + (math.log10(values["model.lr"]) + 3) ** 2)
    return [height * (0.5 + 0.5 * e / EPOCHS) for e in range(1, EPOCHS + 1)]


def fake_score(ctx, values, miner_cfg, trial=None) -> dict:
    """Reports every epoch as score_setting does under a pruner; the record of a finished one."""
    curve, scored = curve_of(values), []
    for epoch, value in enumerate(curve):
        scored.append(value)
        if trial is not None:
            trial.report(value, epoch)
            if epoch < len(curve) - 1 and trial.should_prune():  # never at the last step
                raise optuna.TrialPruned(f"pruned at step {epoch}")
    return {
        "score": max(scored),
        "best_epoch": len(scored),
        "gamma": 0.0,
        "fold_scores": [max(scored)],
        "curve": scored,
        "fold_curves": [scored],
        "fold_gammas": [[0.0] * len(scored)],
    }


def pruned_context():
    return dataclasses.replace(context(), max_epochs=EPOCHS, pruner="median")


def run(path: Path) -> optuna.Study:
    return run_study("s", path, pruned_context(), MINER, N_TRIALS, DEFAULTS, lambda _: None)


def test_pruned_trials_are_never_chosen_and_the_chosen_curve_is_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "score_setting", fake_score)
    study = run(tmp_path / "pruned.db")
    trials = study.get_trials(deepcopy=False)
    pruned = [t for t in trials if "pruned" in t.user_attrs]
    assert pruned, "no trial was pruned"
    assert all(t.state == TrialState.PRUNED for t in pruned)
    assert all(t.number >= 5 for t in pruned)  # the first 5 finished trials are never pruned
    # pruned trials stopped early: fewer reported epochs than a finished one
    assert all(len(t.intermediate_values) < EPOCHS for t in pruned)
    records = finished_records(study)  # what the protocol chooses from
    assert len(records) == N_TRIALS - len(pruned)
    assert all(len(r["curve"]) == EPOCHS for r in records)
    assert len(study.get_trials(deepcopy=False, states=search.FINISHED)) == N_TRIALS


def test_a_pruned_study_killed_inside_a_trial_continues_as_if_never_stopped(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "score_setting", fake_score)
    uninterrupted = run(tmp_path / "a.db")
    calls = {"n": 0}

    def dies_in_trial_9(ctx, values, miner_cfg, trial=None):
        calls["n"] += 1
        if calls["n"] == 10:
            trial.report(0.0, 0)  # an intermediate value of the killed trial stays stored
            raise Killed
        return fake_score(ctx, values, miner_cfg, trial)

    tell = optuna.Study.tell

    def dying_tell(study, t, values=None, state=TrialState.COMPLETE):
        if state == TrialState.FAIL:  # nothing runs after a kill: the trial stays RUNNING
            return None
        return tell(study, t, values, state)

    with monkeypatch.context() as patch:
        patch.setattr(search, "score_setting", dies_in_trial_9)
        patch.setattr(optuna.Study, "tell", dying_tell)
        with pytest.raises(Killed):
            run(tmp_path / "b.db")
    continued = run(tmp_path / "b.db")
    assert complete(continued) == complete(uninterrupted)
    states = [t.state for t in continued.get_trials(deepcopy=False)]
    assert states.count(TrialState.FAIL) == 1  # the killed trial, closed and drawn again


def test_no_pruner_reports_nothing_and_the_choice_is_checked():
    assert isinstance(make_pruner("none", 10), optuna.pruners.NopPruner)
    assert isinstance(make_pruner("median", 10), optuna.pruners.MedianPruner)
    with pytest.raises(ValueError, match=r"protocol\.pruner='hyper' is invalid"):
        make_pruner("hyper", 10)


@pytest.mark.slow
def test_a_pruned_protocol_reports_every_epoch_and_chooses_a_whole_trial(tmp_path):
    """The real path: every trial of a protocol under the median pruner reports its validation
    score after each epoch (PruningReport in the Lightning fit); the chosen trial finished."""
    from test_protocol import run_protocol

    folder = tmp_path / "run"
    overrides = [
        "protocol.n_trials=8",
        "protocol.max_epochs=3",
        "protocol.max_epochs_limit=3",
        "protocol.seeds=[1]",
        "protocol.strategies=[hardest]",
        "protocol.references=[untrained]",
        "protocol.ablation=false",
        "protocol.pruner=median",
    ]
    run_protocol(folder, overrides)
    study = optuna.load_study(study_name="hardest", storage=f"sqlite:///{folder}/search/hardest.db")
    trials = study.get_trials(deepcopy=False)
    for trial in trials:
        steps = sorted(trial.intermediate_values)
        if trial.state == TrialState.COMPLETE:
            assert steps == [0, 1, 2]  # one report per epoch of the one fold
        elif "pruned" in trial.user_attrs:  # stopped early: never at its last epoch
            assert trial.state == TrialState.PRUNED and len(steps) < 3
    md = (folder / "protocol.md").read_text()
    pruned = sum("pruned" in t.user_attrs for t in trials)
    assert "Pruned (`protocol.pruner=median`: " in md and f"`hardest` {pruned} of 8" in md
