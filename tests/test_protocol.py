"""The GBU protocol (src.protocol) on the embedded data, with a tiny search."""

from __future__ import annotations

import csv
import functools
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from hydra_utils import compose_config

import src.protocol.extend
import src.protocol.search
from src.protocol import Protocol, check_same_config
from src.protocol.training import DataModules

CHANCE = 1 / 10  # 10 unseen classes in the default data
TINY = [
    "protocol.n_trials=2",
    "protocol.searches=1",  # the default is 3
    "protocol.max_epochs=3",
    "protocol.seeds=[1,2]",
    "protocol.strategies=[random,hardest]",
    "protocol.references=[nearest_signature,eszsl,untrained]",  # the trained ones: own test
    "protocol.max_epochs_limit=3",  # no extension here (tests/test_protocol_verdicts.py)
]
REQUIRED = [
    "name",
    "kind",
    "test/zsl_acc",
    "test/gzsl_s",
    "test/gzsl_u",
    "test/gzsl_H",
    "test/gzsl_H_cal",
    "test/ausuc",
    "test/zsl_acc_std",
    "test/gzsl_H_cal_std",
    "val_score",
    "chosen",
]


def run_protocol(folder: Path, overrides: list[str] = TINY) -> list[dict]:
    refs = "protocol.references=[nearest_signature,eszsl,untrained]"  # trained ones: own tests
    cfg = compose_config([refs, *overrides], folder, config_name="protocol")
    check_same_config(cfg, folder)
    protocol = Protocol(cfg)
    result = protocol.run()
    protocol.report(result)
    return result.rows


@pytest.fixture(scope="module")
def protocol_run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("protocol") / "run"
    run_protocol(folder)
    return folder


def read_rows(folder: Path) -> dict[str, dict]:
    with (folder / "protocol.csv").open() as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def test_protocol_writes_one_row_per_reference_and_strategy(protocol_run):
    rows = read_rows(protocol_run)
    # nearest_signature needs d = k: the embedded data has d = 256, k = 85.
    assert list(rows) == ["eszsl", "untrained", "random", "hardest", "random@hardest"]
    assert [r["kind"] for r in rows.values()] == [
        "reference",
        "untrained",
        "tuned",
        "tuned",
        "ablation",
    ]
    header = next(csv.reader((protocol_run / "protocol.csv").open()))
    assert set(REQUIRED) <= set(header)
    for name in ("random", "hardest"):
        row = rows[name]
        assert float(row["test/zsl_acc"]) >= 5 * CHANCE
        assert float(row["runs"]) == 2
        chosen = json.loads(row["chosen"])
        assert 1 <= chosen["epochs"] <= 3
        assert math.isfinite(chosen["gamma"])
        assert 0 < float(row["val_score"]) <= 1
    # training lifts the metric above its untrained start under the same (configured)
    # preprocessing, tried first by the untrained reference's own search (on validation)
    untrained = json.loads((protocol_run / "references" / "untrained.json").read_text())
    assert float(rows["hardest"]["val_score"]) > untrained["searched"][0]["val_score"]
    md = (protocol_run / "protocol.md").read_text()
    assert "Best tuned strategy, chosen on validation" in md
    assert "| `eszsl` | reference |" in md
    assert (protocol_run / "protocol.png").stat().st_size > 10_000


def test_std_columns_are_the_sample_std_of_the_saved_seed_runs(protocol_run):
    rows = read_rows(protocol_run)
    runs = [
        json.loads((protocol_run / "refit" / "hardest" / f"seed{s}.json").read_text())
        for s in (1, 2)
    ]
    values = [r["test/zsl_acc"] for r in runs]
    mean = sum(values) / 2
    std = abs(values[0] - values[1]) / math.sqrt(2)
    assert float(rows["hardest"]["test/zsl_acc"]) == pytest.approx(mean)
    assert float(rows["hardest"]["test/zsl_acc_std"]) == pytest.approx(std)


def test_each_study_holds_the_defaults_first_and_n_trials(protocol_run):
    for strategy in ("random", "hardest"):
        study = optuna.load_study(
            study_name=strategy, storage=f"sqlite:///{protocol_run / 'search' / strategy}.db"
        )
        trials = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert len(trials) == 2
        first = trials[0].params
        assert first["lr"] == pytest.approx(1e-3)  # ridge init on the embedded data
        assert first["preprocessing"] == "standardise"


def test_a_rerun_in_the_same_folder_continues_and_changes_nothing(protocol_run, monkeypatch):
    before = (protocol_run / "protocol.csv").read_text()
    calls = []
    monkeypatch.setattr("src.protocol.search.score_setting", lambda *a, **k: calls.append(a) or {})
    monkeypatch.setattr("src.protocol.training.train_curve", lambda *a, **k: calls.append(a) or [])
    run_protocol(protocol_run)
    assert calls == []  # no trial and no training ran again
    assert (protocol_run / "protocol.csv").read_text() == before


def test_an_interrupted_protocol_continues_with_its_missing_trials(tmp_path, monkeypatch):
    import src.protocol.search as search

    folder = tmp_path / "run"
    overrides = [*TINY[:2], "protocol.max_epochs=2", "protocol.seeds=[1]"]
    overrides.append("protocol.strategies=[random]")
    calls = []
    score = search.score_setting

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user stops the protocol during trial 2
        return score(*args, **kwargs)

    monkeypatch.setattr(search, "score_setting", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_protocol(folder, overrides)
    assert not (folder / "protocol.csv").exists()
    calls.clear()
    monkeypatch.setattr(search, "score_setting", lambda *a, **k: calls.append(1) or score(*a, **k))
    rows = run_protocol(folder, overrides)
    assert len(calls) == 1  # only the missing trial; the references were not recomputed
    study = optuna.load_study(study_name="random", storage=f"sqlite:///{folder}/search/random.db")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    assert [r["name"] for r in rows] == ["eszsl", "untrained", "random"]


def test_search_and_choices_read_validation_splits_only(tmp_path, monkeypatch):
    seen: list[tuple[str, str]] = []
    original = DataModules.get
    stage = {"name": "start"}

    def spy(self, split_mode, fold, seed, overrides):
        seen.append((stage["name"], split_mode))
        return original(self, split_mode, fold, seed, overrides)

    monkeypatch.setattr(DataModules, "get", spy)

    def spied(module, name):
        original_stage = getattr(module, name)

        def stage_function(*args, **kwargs):
            stage["name"] = name
            try:
                return original_stage(*args, **kwargs)
            finally:
                stage["name"] = "after"

        monkeypatch.setattr(module, name, stage_function)

    spied(src.protocol.search, "search_row")
    spied(src.protocol.extend, "choose")  # the choice and its extensions
    run_protocol(
        tmp_path / "run",
        [*[o for o in TINY[1:] if "epochs" not in o and "strategies" not in o],
         "protocol.n_trials=1", "protocol.strategies=[random]", "protocol.max_epochs=1",
         "protocol.max_epochs_limit=2"],
    )  # fmt: skip
    assert {mode for name, mode in seen if name == "search_row"} == {"val"}
    assert {mode for name, mode in seen if name == "choose"} == {"val"}


# --------------------------------------------------- selection rules on hand-made curves
def trial(fold_curves, gammas=None):
    gammas = gammas or [[0.1 * (e + 1) for e in range(len(fold_curves[0]))]] * len(fold_curves)
    return {"fold_curves": fold_curves, "fold_gammas": gammas, "values": {}, "curve": []}


def test_a_spike_chooses_the_epoch_raw_but_not_smoothed():
    from src.protocol.selection import choose_epoch

    curves = np.array([[0.5, 0.9, 0.4, 0.6, 0.7, 0.7], [0.5, 0.9, 0.4, 0.6, 0.7, 0.7]])
    assert choose_epoch(curves, 1) == (1, pytest.approx(0.9))
    # centred 3-epoch means: 0.7, 0.6, 0.633, 0.567, 0.667, 0.7 → first best is epoch 0
    epoch, score = choose_epoch(curves, 3)
    assert (epoch, score) == (0, pytest.approx(0.7))


def test_choose_trial_takes_gamma_at_the_chosen_epoch_and_the_earliest_tie():
    from src.protocol.selection import choose_trial

    a = trial([[0.5, 0.8], [0.7, 0.6]], gammas=[[1.0, 2.0], [3.0, 4.0]])  # mean 0.6, 0.7
    b = trial([[0.7, 0.6], [0.7, 0.6]])  # mean 0.7, 0.6
    chosen = choose_trial([a, b], 1)
    assert (chosen["trial"], chosen["best_epoch"]) == (0, 2)  # tie at 0.7: the earlier trial
    assert chosen["gamma"] == pytest.approx(3.0)  # mean of the folds' γ at epoch 2
    assert chosen["fold_scores"] == [0.8, 0.6]


def test_held_out_check_scores_each_fold_with_choices_made_on_the_others():
    from src.protocol.selection import held_out_check, selection_window

    # Trial 0 looks best on folds 0 and 1 but is poor on fold 2, and vice versa.
    t0 = trial([[0.9], [0.9], [0.1]])
    t1 = trial([[0.5], [0.5], [0.8]])
    # held out fold 0: others (0.9, 0.1)→0.5 vs (0.5, 0.8)→0.65 → t1 → 0.5
    # held out fold 1: same → t1 → 0.5; held out fold 2: t0 (0.9) → 0.1
    assert held_out_check([t0, t1], 1) == pytest.approx((0.5 + 0.5 + 0.1) / 3)
    assert selection_window([t0, t1], 3) == 3
    assert selection_window([t0, t1], "auto") == 1  # a tie keeps the raw curve


def test_report_on_a_finished_protocol_is_one_line_and_writes_nothing(
    protocol_run, capsys, monkeypatch
):
    """src.report on one protocol's folder points to its tables; the folder stays byte-identical
    (it once gained a row `miner=None … incomplete` and report files)."""
    from src.report import main

    def snapshot() -> dict[str, bytes]:
        return {str(p): p.read_bytes() for p in sorted(protocol_run.rglob("*")) if p.is_file()}

    before = snapshot()
    capsys.readouterr()
    monkeypatch.setattr("sys.argv", ["src/report.py", str(protocol_run)])
    with pytest.raises(SystemExit) as stop:
        main()
    console = capsys.readouterr()
    assert stop.value.code == 1 and not console.out
    assert console.err.strip() == (
        f"Error: {protocol_run} is one protocol run, not a sweep: its results are "
        f"{protocol_run}/protocol.md and protocol.csv; nothing was written. src.report reads a "
        "multirun folder (outputs/<task>/multiruns/<date>_<time>_<tag>; one protocol per dataset "
        "gives a leaderboard)."
    )
    assert snapshot() == before


def test_the_protocol_builds_its_pools_from_the_pool_group(tmp_path, monkeypatch):
    """pool.* reaches every pool the protocol trains with (search, refit, untrained reference),
    as in src.train; and protocol.md's warm-up note reads the configured warm-up."""
    from src.mining.pool import NegativePool

    built = []
    init = NegativePool.__init__

    @functools.wraps(init)  # its signature: the saved settings compare with its defaults
    def spy(self, miner, *args, **kwargs):
        init(self, miner, *args, **kwargs)
        built.append((type(miner).__name__, self.refresh_every, self.warmup_epochs))

    monkeypatch.setattr(NegativePool, "__init__", spy)
    small = ["protocol.n_trials=1", "protocol.searches=1", "protocol.max_epochs=2",
             "protocol.max_epochs_limit=2", "protocol.seeds=[1]", "protocol.ablation=false",
             "protocol.strategies=[hardest]", "protocol.references=[untrained]"]  # fmt: skip
    folder = tmp_path / "run"
    run_protocol(folder, [*small, "pool.warmup_epochs=2", "pool.refresh_every=3"])
    assert {"HardestMiner", "RandomMiner"} <= {name for name, _, _ in built}
    assert {(every, warmup) for _, every, warmup in built} == {(3, 2)}
    saved = (folder / "protocol_config.yaml").read_text()
    assert "pool:\n  refresh_every: 3\n  warmup_epochs: 2\n" in saved
    assert (
        "within its 2 warm-up epoch(s) of random negatives" in (folder / "protocol.md").read_text()
    )
    # with the group's defaults, the saved settings are those of an earlier version's folder
    built.clear()
    run_protocol(tmp_path / "defaults", small)
    assert {(every, warmup) for _, every, warmup in built} == {(1, 1), (1, 0)}
    assert "pool" not in (tmp_path / "defaults" / "protocol_config.yaml").read_text()


def test_a_bad_pool_setting_stops_the_protocol_before_any_data(tmp_path):
    from cli_utils import run_cli

    result = run_cli("src.protocol", ["pool.refresh_every=0", f"hydra.run.dir={tmp_path}/run"],
                     check=False)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: pool.refresh_every=0 is invalid: it must be ≥ 1."
    ]
    assert not (tmp_path / "run" / "references").exists()
