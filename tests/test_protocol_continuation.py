"""Issue 17, item 6: a protocol stopped at any moment, even by ``kill -9``, and continued with the
same command ends exactly as an uninterrupted one (the same trials, in the same order, and a
byte-identical ``protocol.csv``).

The search's own cases run :func:`src.protocol.search.run_study` in this process with a hand-made
score (fast); the ``slow`` cases run ``python -m src.protocol`` on the embedded data and kill it
with SIGKILL inside a trial, a reference and a refit.
"""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from cli_utils import ROOT, cli_command, cli_env, run_cli
from omegaconf import OmegaConf
from optuna.trial import TrialState

import src.protocol.search as search
from src.protocol.search import SearchContext, run_study
from src.protocol.spaces import PREPROCESSING
from src.protocol.study import FINISHED, finished_records, open_study

N_TRIALS = 11  # past TPE's 8 random warm-up trials, so that TPE itself draws the last ones
MINER = OmegaConf.create({"num_negatives": 5, "temperature": 1.0})
DEFAULTS = {
    "preprocessing": "l2",
    "l2_signatures": True,
    "init": "ridge",
    "lr": 1e-3,
    "attribute_weight": 0.1,
    "weight_decay": 1e-4,
    "rank": 85,
    "num_negatives": 5,
    "temperature": 1.0,
}


class Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs (see :func:`killed_at`)."""


def context() -> SearchContext:
    return SearchContext(
        data=None,
        model_cfg=OmegaConf.create({}),
        trainer_cfg=OmegaConf.create({}),
        folds=[1],
        max_epochs=3,
        metric="val/zsl_acc",
        seed=0,
        feature_dim=256,
        signature_dim=85,
        min_train_classes=40,
        attribute_signatures=True,
    )


def fake_score(ctx, values, miner_cfg) -> dict:
    """A smooth function of the setting (its best near lr = 1e-3), shaped like score_setting's."""
    if values["model.lr"] > 3e-3:
        raise FloatingPointError("diverged")  # a diverged trial: PRUNED with its error
    score = 1 / (1 + (math.log10(values["model.lr"]) + 3) ** 2) - 0.01 * values["miner.temperature"]
    return {"score": score, "best_epoch": 1, "fold_gammas": [[0.0]], "fold_curves": [[score]]}


def study_at(path: Path, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{path}")


def complete(study: optuna.Study) -> list[tuple[dict, float | None]]:
    """(setting, score) of the finished trials, in order: scored, or diverged (``None``)."""
    trials = study.get_trials(deepcopy=False, states=FINISHED)
    return [(t.params, t.value) for t in sorted(trials, key=lambda t: t.number)]


def run(path: Path, n_trials: int = N_TRIALS) -> optuna.Study:
    return run_study("s", path, context(), MINER, n_trials, DEFAULTS, lambda _: None)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> optuna.Study:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search, "score_setting", fake_score)
        return run(tmp_path_factory.mktemp("study") / "uninterrupted.db")


def killed_at(monkeypatch, trial: int, where: str) -> None:
    """Make the next run die inside finished trial number ``trial`` (0-based), as SIGKILL would:
    while drawing its setting (``draw``), while scoring it (``score``), or scored, just before
    Optuna stores its value and state (``tell``; one write since optuna 3); the trial is left
    RUNNING, as a killed process leaves it."""
    calls = {"score": 0}
    tell = optuna.Study.tell

    def score(ctx, values, miner_cfg):
        calls["score"] += 1
        if where == "score" and calls["score"] == trial + 1:
            raise Killed
        return fake_score(ctx, values, miner_cfg)

    def dying_tell(study, t, values=None, state=TrialState.COMPLETE):
        if state == TrialState.FAIL:  # nothing runs after a kill: the trial stays RUNNING
            return None
        if where == "tell" and calls["score"] == trial + 1:
            raise Killed
        return tell(study, t, values, state)

    original_space = search.space

    def space(t, ctx, miner_cfg):
        if where == "draw" and calls["score"] == trial:
            t.suggest_categorical("preprocessing", list(PREPROCESSING))
            t.suggest_categorical("l2_signatures", [True, False])
            raise Killed  # two of the setting's values drawn and stored, the others not
        return original_space(t, ctx, miner_cfg)

    monkeypatch.setattr(search, "score_setting", score)
    monkeypatch.setattr(search, "space", space)
    monkeypatch.setattr(optuna.Study, "tell", dying_tell)


@pytest.mark.parametrize(
    ("trial", "where"),
    [(0, "draw"), (0, "score"), (0, "tell"), (2, "score"), (9, "draw"), (9, "tell")],
)
def test_a_study_killed_inside_a_trial_continues_as_if_never_stopped(
    uninterrupted, tmp_path, monkeypatch, trial, where
):
    path = tmp_path / "killed.db"
    with monkeypatch.context() as patch:
        killed_at(patch, trial, where)
        with pytest.raises(Killed):
            run(path)
    left = study_at(path)
    assert [t.number for t in left.trials if t.state == TrialState.RUNNING] == [
        len(left.trials) - 1
    ]
    assert len(complete(left)) == trial

    monkeypatch.setattr(search, "score_setting", fake_score)
    continued = run(path)
    states = [t.state for t in continued.trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert states.count(TrialState.FAIL) == 1  # the killed trial, closed and drawn again
    assert complete(continued) == complete(uninterrupted)
    assert finished_records(continued) == finished_records(uninterrupted)
    assert complete(continued)[0][0] == DEFAULTS  # the defaults first, even after a kill in it


def test_the_uninterrupted_study_tries_distinct_settings_with_tpe(uninterrupted):
    params = [p for p, _ in complete(uninterrupted)]
    assert len(params) == N_TRIALS
    assert len({tuple(sorted(p.items())) for p in params}) == N_TRIALS  # no setting twice
    diverged = [t for t in uninterrupted.trials if t.state == TrialState.PRUNED]
    # a diverged setting is PRUNED with its error (never a made-up score), not in the records
    assert diverged and all(t.user_attrs["error"] == "diverged" for t in diverged)
    assert all(t.value is None for t in diverged)
    assert len(finished_records(uninterrupted)) == N_TRIALS - len(diverged)


def test_a_kill_between_queueing_the_defaults_and_running_them_queues_them_once(
    uninterrupted, tmp_path, monkeypatch
):
    path = tmp_path / "queued.db"
    open_study("s", path, 0, N_TRIALS, DEFAULTS)  # killed right after the defaults were queued
    open_study("s", path, 0, N_TRIALS, DEFAULTS)
    assert len(study_at(path).trials) == 1
    monkeypatch.setattr(search, "score_setting", fake_score)
    continued = run(path)
    assert complete(continued) == complete(uninterrupted)
    assert len(continued.trials) == N_TRIALS


def test_ctrl_c_inside_a_trial_closes_it_as_failed(uninterrupted, tmp_path, monkeypatch):
    path = tmp_path / "stopped.db"
    calls = []

    def score(ctx, values, miner_cfg):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return fake_score(ctx, values, miner_cfg)

    monkeypatch.setattr(search, "score_setting", score)
    with pytest.raises(KeyboardInterrupt):
        run(path)
    assert [t.state for t in study_at(path).trials][-1] == TrialState.FAIL
    monkeypatch.setattr(search, "score_setting", fake_score)
    assert complete(run(path)) == complete(uninterrupted)


# ------------------------------------------------ the protocol process, killed with SIGKILL
TINY = [
    "protocol.n_trials=3",
    "protocol.searches=1",  # the default is 3
    "protocol.max_epochs=4",
    "protocol.seeds=[1,2]",
    "protocol.strategies=[random,hardest]",
    "protocol.references=[nearest_signature,eszsl,untrained]",  # the trained ones: own test
    "protocol.max_epochs_limit=8",  # a chosen epoch at the cap (4) runs once more, with 8
]
POLL_S = 0.005
WAIT_S = 300


def protocol_args(folder: Path) -> list[str]:
    return [*TINY, f"hydra.run.dir={folder}"]


def states(db: Path) -> list[tuple[int, str]]:
    """(number, state) of the study's trials, read straight from SQLite (read-only)."""
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1) as connection:
            return connection.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
    except sqlite3.OperationalError:  # being created or locked by the writer: ask again
        return []


def run_and_kill(folder: Path, moment) -> None:
    """Start the protocol in ``folder``, SIGKILL it as soon as ``moment()`` holds."""
    process = subprocess.Popen(
        cli_command("src.protocol", protocol_args(folder)),
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + WAIT_S
    try:
        while not moment():
            assert process.poll() is None, "the protocol ended before the moment to kill it"
            assert time.monotonic() < deadline, "the moment to kill the protocol never came"
            time.sleep(POLL_S)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


#: files that differ between two folders by design: logs, studies (compared trial by trial), and
#: checkpoints (they record their folder), and a temporary file a kill may leave beside one
NOT_COMPARED = (".log", ".db", ".ckpt", ".tmp")


def check_same_outputs(a: Path, b: Path) -> None:
    """``b`` (killed and continued) holds what ``a`` (uninterrupted) holds, byte for byte."""
    assert (b / "protocol.csv").read_bytes() == (a / "protocol.csv").read_bytes()
    files = sorted(
        f.relative_to(a)
        for f in a.rglob("*")
        if f.is_file() and ".hydra" not in f.parts and f.suffix not in NOT_COMPARED
    )
    assert files == sorted(
        f.relative_to(b)
        for f in b.rglob("*")
        if f.is_file() and ".hydra" not in f.parts and f.suffix not in NOT_COMPARED
    )  # no half-written or temporary file left
    assert [f for f in files if (a / f).read_bytes() != (b / f).read_bytes()] == []
    for strategy in ("random", "hardest"):
        db_a, db_b = (f / "search" / f"{strategy}.db" for f in (a, b))
        assert not [s for _, s in states(db_b) if s == "RUNNING"]
        assert complete(study_at(db_b, strategy)) == complete(study_at(db_a, strategy))


@pytest.fixture(scope="module")
def uninterrupted_protocol(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("continuation") / "a"
    run_cli("src.protocol", protocol_args(folder))
    return folder


@pytest.mark.slow
def test_a_protocol_killed_inside_a_trial_continues_to_the_same_csv(
    uninterrupted_protocol, tmp_path
):
    b = tmp_path / "b"
    db = b / "search" / "random.db"
    # trial 2 (0-based) of `random` running: trials 0 and 1 finished
    run_and_kill(b, lambda: (2, "RUNNING") in states(db))
    assert [s for _, s in states(db)] == ["COMPLETE", "COMPLETE", "RUNNING"]
    run_cli("src.protocol", protocol_args(b))
    check_same_outputs(uninterrupted_protocol, b)


@pytest.mark.slow
def test_a_protocol_killed_inside_a_reference_an_extension_and_a_refit_continues_alike(
    uninterrupted_protocol, tmp_path
):
    b = tmp_path / "b"
    references, refit = b / "references", b / "refit" / "random"
    # inside the second reference (the untrained metric): the first one is saved
    run_and_kill(b, lambda: (references / "eszsl.json").is_file())
    assert not (references / "untrained.json").exists()
    # the searches done, inside the extended validation runs of `random` (its chosen epoch was
    # the cap, 4, in the uninterrupted run)
    assert (uninterrupted_protocol / "search" / "extended" / "random_8.json").is_file()
    run_and_kill(b, lambda: (2, "COMPLETE") in states(b / "search" / "hardest.db"))
    assert not (b / "search" / "extended" / "random_8.json").exists()
    # inside the refit of `random`, seed 2: seed 1 is saved
    run_and_kill(b, lambda: (refit / "seed1.json").is_file())
    assert not (refit / "seed2.json").exists()
    run_cli("src.protocol", protocol_args(b))
    check_same_outputs(uninterrupted_protocol, b)


@pytest.mark.slow
def test_a_two_search_protocol_killed_in_its_second_search_continues_to_the_same_csv(tmp_path):
    """Issue 36: ``protocol.searches=2``, killed with SIGKILL inside a trial of the second
    search (seed 1, in ``searches/seed1/``) and continued, ends with the uninterrupted run's
    ``protocol.csv`` and every other file byte for byte, both searches' studies alike."""
    extra = ["protocol.searches=2", "protocol.seeds=[1]"]

    def args(folder: Path) -> list[str]:
        return [*protocol_args(folder), *extra]

    a, b = tmp_path / "a", tmp_path / "b"
    run_cli("src.protocol", args(a))
    second = b / "searches" / "seed1" / "search" / "random.db"
    process = subprocess.Popen(
        cli_command("src.protocol", args(b)),
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + WAIT_S
    try:
        while (1, "RUNNING") not in states(second):
            assert process.poll() is None, "the protocol ended before its second search"
            assert time.monotonic() < deadline, "the second search never started trial 1"
            time.sleep(POLL_S)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert not (b / "protocol.csv").exists()
    run_cli("src.protocol", args(b))
    check_same_outputs(a, b)
    for strategy in ("random", "hardest"):
        db_a, db_b = (f / "searches" / "seed1" / "search" / f"{strategy}.db" for f in (a, b))
        assert complete(study_at(db_b, strategy)) == complete(study_at(db_a, strategy))
