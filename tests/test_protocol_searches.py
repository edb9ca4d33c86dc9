"""Issue 36, item 1: ``protocol.searches`` runs independent searches of every searched row.

Search k runs with seed ``seed + k`` (its sampler and its validation runs) in
``searches/seed<seed+k>/``, chooses its own setting and epoch count, and refits over
``protocol.seeds``; a row is the mean over searches × seeds, with the spread over searches.
Search 0 is exactly the one-search protocol: its studies and refits lie where they always did.
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from test_protocol import run_protocol

from src.protocol.kept import prediction_files, search_folders
from src.protocol.settings import ProtocolSettings

SMALL = [
    "protocol.n_trials=2",
    "protocol.searches=1",
    "protocol.max_epochs=2",
    "protocol.max_epochs_limit=2",
    "protocol.seeds=[1]",
    "protocol.strategies=[random,hardest]",
    "protocol.bootstrap.resamples=200",
]


@pytest.fixture(scope="module")
def two_searches(tmp_path_factory):
    folder = tmp_path_factory.mktemp("searches") / "run"
    return folder, run_protocol(folder, [*SMALL, "protocol.searches=2"])


def _refit(folder, name: str, seed: int = 1) -> dict:
    return json.loads((folder / "refit" / name / f"seed{seed}.json").read_text())


def test_each_row_is_the_mean_over_searches_with_their_spread(two_searches):
    folder, _ = two_searches
    with (folder / "protocol.csv").open() as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    second = folder / "searches" / "seed1"  # the embedded config's seed is 0: search 1 is seed 1
    for name in ("random", "hardest", "random@hardest"):
        first_run, second_run = _refit(folder, name), _refit(second, name)
        row = rows[name]
        assert row["searches"] == "2" and row["runs"] == "2"  # 2 searches × 1 refit seed
        for metric in ("test/zsl_acc", "test/gzsl_H_cal"):
            values = [first_run[metric], second_run[metric]]
            assert float(row[metric]) == pytest.approx(np.mean(values))
            spread = float(row[f"{metric}_search_std"])
            assert spread == pytest.approx(np.std(values, ddof=1))
    assert rows["eszsl"]["searches"] == ""  # a grid-searched reference is searched once
    # each search chose on its own validation runs: its study lies in its own folder
    assert (second / "search" / "hardest.db").is_file() and (folder / "search" / "hardest.db")
    # the row's validation score is the mean of the searches' chosen scores
    assert math.isfinite(float(rows["hardest"]["val_score"]))


def test_the_verdicts_read_every_search_and_protocol_md_names_each_choice(two_searches):
    folder, _ = two_searches
    from omegaconf import OmegaConf

    config = OmegaConf.load(folder / "protocol_config.yaml")
    folders = search_folders(
        folder, ProtocolSettings.from_config(config.protocol), int(config.seed)
    )
    assert folders == [folder, folder / "searches" / "seed1"]
    files = prediction_files(folder, "hardest", "tuned", [1], folders)
    assert all(path.is_file() for path in files) and len(files) == 2
    md = (folder / "protocol.md").read_text()
    assert "in each of 2 independent searches" in md
    assert "## Each search's choice (2 searches, seeds [0, 1]" in md
    for seed in (0, 1):
        assert f"- `hardest`, search seed {seed}: val " in md
    with (folder / "comparisons.csv").open() as f:
        header = next(csv.reader(f))
    assert {"p_value", "p_holm", "prob_improvement"} <= set(header)


def test_a_rerun_of_a_two_search_protocol_changes_nothing(two_searches, monkeypatch):
    folder, _ = two_searches
    before = (folder / "protocol.csv").read_text()
    calls = []
    monkeypatch.setattr("src.protocol.search.score_setting", lambda *a, **k: calls.append(a) or {})
    monkeypatch.setattr("src.protocol.training.train_curve", lambda *a, **k: calls.append(a) or [])
    run_protocol(folder, [*SMALL, "protocol.searches=2"])
    assert calls == []  # every search's trials and refits were found, none ran again
    assert (folder / "protocol.csv").read_text() == before


def test_intervals_resample_the_searches_and_recompute_reproduces_them(two_searches, capsys):
    """protocol.csv's intervals come from the two-level bootstrap (searches, then classes);
    src.protocol.report.recompute, reading every search's kept predictions, reproduces every row."""
    from src.metrics.bootstrap import class_plan, interval, pooled, search_plan
    from src.protocol.kept import load_credits
    from src.protocol.report import recompute

    folder, _ = two_searches
    assert recompute.main([str(folder)]) == 0
    assert capsys.readouterr().out.count("matches protocol.csv") == 5  # every row
    with (folder / "protocol.csv").open() as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    two = ProtocolSettings.from_config({"strategies": ["hardest"], "searches": 2})
    runs = load_credits(prediction_files(folder, "hardest", "tuned", [1], search_folders(
        folder, two, 0)))  # fmt: skip
    plan = class_plan(*runs[0].sizes, 200, 0)  # protocol.bootstrap: 200 resamples, seed 0
    two_level = pooled(runs, plan, search_plan(2, 200, 2))["zsl_acc"]
    low, high = interval(two_level, 0.95)
    assert float(rows["hardest"]["test/zsl_acc_ci_low"]) == pytest.approx(low)
    assert float(rows["hardest"]["test/zsl_acc_ci_high"]) == pytest.approx(high)
