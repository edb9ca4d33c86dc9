"""Issue 36, item 7: ``protocol.pruner=median`` stops hopeless trials early.

A trial reports its running validation estimate after every epoch of every fold (fold k at
steps ``k × max_epochs + epoch``: the mean of folds 1…k at that epoch); Optuna's MedianPruner
stops it when its best value so far falls below the median of the finished trials at that
step. A pruned trial is never chosen, the chosen one has its whole curve, and a study killed
inside a trial and continued prunes exactly as the uninterrupted one.
The fast cases use a score function shaped like ``score_setting``; the slow one trains.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import optuna
import pytest
from cli_utils import load_script
from optuna.trial import TrialState
from test_protocol_continuation import DEFAULTS, MINER, Killed, complete, context

import src.protocol.search as search
from src.protocol.search import run_study
from src.protocol.study import FINISHED, finished_records, make_pruner

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
    assert len(study.get_trials(deepcopy=False, states=FINISHED)) == N_TRIALS


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
        "protocol.searches=1",  # the default is 3
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
            reported = [trial.intermediate_values[s] for s in steps]
            assert reported == pytest.approx(trial.user_attrs["fold_curves"][0], abs=1e-6)
        elif "pruned" in trial.user_attrs:  # stopped early: never at its last epoch
            assert trial.state == TrialState.PRUNED and len(steps) < 3
    md = (folder / "protocol.md").read_text()
    pruned = sum("pruned" in t.user_attrs for t in trials)
    assert "Pruned (`protocol.pruner=median`: " in md and f"`hardest` {pruned} of 8" in md


def _fold_reports(trial, curves: list[list[float]], last: int) -> bool:
    """Feed a trial's fold curves through PruningReport as Lightning would; True if pruned."""
    from types import SimpleNamespace

    import torch

    from src.protocol.training import PruningReport

    earlier: list[list[float]] = []
    for k, curve in enumerate(curves):
        report = PruningReport(trial, "val/zsl_acc", k * len(curve), last, earlier=earlier)
        for epoch, value in enumerate(curve):
            trainer = SimpleNamespace(
                sanity_checking=False,
                current_epoch=epoch,
                callback_metrics={"val/zsl_acc": torch.tensor(value, dtype=torch.float64)},
            )
            try:
                report.on_validation_end(trainer, None)
            except optuna.TrialPruned:
                return True
        earlier.append(curve)
    return False


def test_the_pruner_sees_the_running_mean_over_folds_not_a_folds_raw_value():
    """Validation folds differ in difficulty, and Optuna compares a trial's best value so far
    with the finished trials' values at this step: with raw fold values, a trial better on
    the mean curve (0.75 > 0.70) is pruned in the easy fold 2 because its fold 1 (0.8) is below
    the others' fold 2 (0.9). The running mean over the folds so far keeps it."""
    study = optuna.create_study(direction="maximize", pruner=make_pruner("median", 24))
    others = [[0.5, 0.5], [0.9, 0.9]]  # mean curve 0.70
    for _ in range(5):  # the pruner's startup trials
        trial = study.ask()
        assert not _fold_reports(trial, others, last=3)
        study.tell(trial, 0.7)
    completed = study.get_trials(states=(TrialState.COMPLETE,))
    assert completed[0].intermediate_values == {0: 0.5, 1: 0.5, 2: 0.7, 3: 0.7}
    better = study.ask()
    assert not _fold_reports(better, [[0.8, 0.8], [0.7, 0.7]], last=3)  # mean curve 0.75
    assert better.storage.get_trial(better._trial_id).intermediate_values == {
        0: 0.8,
        1: 0.8,
        2: pytest.approx(0.75),
        3: pytest.approx(0.75),
    }
    study.tell(better, 0.75)
    worse = study.ask()  # below the others on every fold: stopped at the first step it may be
    assert _fold_reports(worse, [[0.4, 0.4], [0.8, 0.8]], last=3)
    assert sorted(worse.storage.get_trial(worse._trial_id).intermediate_values) == [0, 1, 2]


def test_the_replay_script_reports_as_the_protocol_and_finds_the_raw_values_flaw(tmp_path, capsys):
    """scripts/prune_replay.py (the README's evidence for the running mean) replays stored
    unpruned studies: its ``running`` values are PruningReport's, and on the hand-made case
    above the raw values prune the trial the unpruned search chose, the running mean does not."""
    replay = load_script("prune_replay")
    assert replay.reports([[0.8, 0.6], [0.7, 0.2]], "running") == [
        (0, 0.8),
        (1, 0.6),
        (2, pytest.approx(0.75)),
        (3, pytest.approx(0.4)),
    ]
    assert [v for _, v in replay.reports([[0.8, 0.6], [0.7, 0.2]], "raw")] == [0.8, 0.6, 0.7, 0.2]
    (tmp_path / "run" / "search").mkdir(parents=True)
    storage = f"sqlite:///{tmp_path / 'run' / 'search' / 'hardest.db'}"
    study = optuna.create_study(study_name="hardest", storage=storage, direction="maximize")
    for curves, score in [([[0.5, 0.5], [0.9, 0.9]], 0.7)] * 5 + [([[0.8, 0.8], [0.7, 0.7]], 0.75)]:
        trial = study.ask()
        for key, value in {
            "fold_curves": curves,
            "fold_gammas": [[0.0, 0.0]] * 2,
            "score": score,
        }.items():
            trial.set_user_attr(key, value)
        study.tell(trial, score)
    result = replay.main([str(tmp_path / "run")])
    (line,) = result["studies"]
    assert line["chosen"] == pytest.approx(0.75)
    assert line["median, raw fold values"]["chosen_delta"] == pytest.approx(-0.05)  # pruned
    assert line["median, running mean (the protocol's)"]["chosen_delta"] == 0.0
    out = capsys.readouterr().out
    assert "| median, raw fold values | 0.96 | 1 of 1 | -0.0500 |" in out
    assert "| median, running mean (the protocol's) | 1.00 | 0 of 1 | +0.0000 |" in out
