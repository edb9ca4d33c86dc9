"""What a careful reader sees: each output says what it is (issue 20's "On screen" items).

Warm-up-only jobs named by the sweep and the report, no "± 0.000" for one run, a resumed
finished sweep and a resumed Optuna search counted right, curves of one epoch drawn, W&B's
config and per-class table, the provenance and selected epoch of ``metrics.json``, and
``src.eval`` saying when validation classes were training classes.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import subprocess
import time
from pathlib import Path

import pytest
from cli_utils import ROOT, run_cli
from hydra_utils import QUIET, compose_config
from omegaconf import OmegaConf
from test_report import make_override_job

from src.cli.job import _cell
from src.report import report
from src.sweeps.curves import draw_curves
from src.sweeps.jobs import find_jobs
from src.sweeps.progress import JobFolder, SweepProgress, total_jobs
from src.sweeps.warmup import SELECTED_IN_WARMUP, WARMUP_ONLY, warmup_status


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


# ------------------------------------------------------------------ warm-up (item 1)
def test_warmup_status_from_the_recorded_epochs():
    assert warmup_status({"epoch/last": 0, "epoch/selected": 0, "epoch/warmup": 1}) == WARMUP_ONLY
    status = warmup_status({"epoch/last": 3, "epoch/selected": 0, "epoch/warmup": 1})
    assert status == SELECTED_IN_WARMUP
    assert warmup_status({"epoch/last": 3, "epoch/selected": 1, "epoch/warmup": 1}) is None
    assert warmup_status({"epoch/last": 0, "epoch/selected": 0, "epoch/warmup": 0}) is None
    assert warmup_status({"val/zsl_acc": 0.5}) is None  # a job of an earlier version


@pytest.mark.slow
def test_a_one_epoch_sweep_says_hardest_ran_only_its_warmup_and_a_resume_says_all_done(
    tmp_path, capsys
):
    args = ["-m", "miner=random,hardest", "trainer.max_epochs=1", "seed=1"]
    args += [*QUIET, f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args)
    lines = result.stdout.splitlines()
    (random_line,) = [line for line in lines if "#0 miner=random" in line]
    (hardest_line,) = [line for line in lines if "#1 miner=hardest" in line]
    assert "warm-up" not in random_line
    assert hardest_line.endswith("(warm-up only)")
    (note,) = [line for line in lines if line.startswith("Warm-up only: job 1 (miner=hardest")]
    assert "every epoch it trained drew uniform random negatives" in note

    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    report(sweep)
    printed = capsys.readouterr().out
    note = "Warm-up only: 1 (miner=hardest, seed=1): every epoch it trained drew uniform random"
    assert note in printed
    assert note in (sweep / "report.md").read_text()

    resumed = run_cli("src.train", [*args, f"resume_sweep={sweep}"])
    assert "Sweep: no job ran: all 2 had finished in an earlier run." in resumed.stdout
    assert "┏" not in resumed.stdout  # no empty table


# ---------------------------------------------------------- one run's spread (item 2)
def test_a_setting_of_one_run_shows_no_spread(tmp_path):
    sweep = tmp_path / "sweep"
    make_override_job(sweep, 0, ["miner=random", "seed=1"], {"val/zsl_acc": 0.5})
    make_override_job(sweep, 1, ["miner=hardest", "seed=1"], {"val/zsl_acc": 0.7}, miner="hardest")
    make_override_job(sweep, 2, ["miner=hardest", "seed=2"], {"val/zsl_acc": 0.8}, miner="hardest")
    rows = {row["miner"]: row for row in report(sweep)}
    assert math.isnan(rows["random"]["val/zsl_acc std"])
    assert rows["hardest"]["val/zsl_acc std"] == pytest.approx(0.0707107, abs=1e-6)
    markdown = (sweep / "report.md").read_text()
    assert "| 0.500 ± – |" in markdown and "| 0.750 ± 0.071 |" in markdown
    assert "± 0.000" not in markdown


# ------------------------------------------------------------ resumed counts (item 3)
def test_an_optuna_search_counts_the_trials_of_this_invocation():
    optuna = OmegaConf.create(
        {"hydra": {"sweeper": {"_target_": "hydra_plugins.x.OptunaSweeper", "n_trials": 3}}}
    )
    assert total_jobs(optuna) == (3, False)


def test_a_resumed_search_numbers_its_jobs_among_its_own(tmp_path, capsys):
    job = tmp_path / "0_new"
    job.mkdir()
    (job / "metrics.json").write_text(json.dumps({"val/zsl_acc": 0.5, "val/gzsl_H": 0.25}))
    progress = SweepProgress()
    progress._started = time.time()
    progress._before = {"0_old", "1_old", "2_old"}  # trials of the search it resumes
    progress._reported = {"0_new"}
    progress._total, progress._total_counts_before = 1, False  # Optuna: n_trials=1 more
    progress._line(JobFolder(job, set()))
    assert "[sweep] job 1/1 · " in capsys.readouterr().out
    progress._total, progress._total_counts_before = 4, True  # a grid: its whole size
    progress._line(JobFolder(job, set()))
    assert "[sweep] job 4/4 · " in capsys.readouterr().out


# ----------------------------------------------------------- curves of 1 epoch (item 4)
def test_curves_of_one_epoch_are_points_on_an_epoch_axis(tmp_path):
    sweep = tmp_path / "sweep"
    for num, seed in enumerate((1, 2)):
        rows = [{"epoch": 0, "step": 10, "val/zsl_acc": 0.5 + seed / 10}]
        make_override_job(sweep, num, [f"seed={seed}"], {"val/zsl_acc": 0.6}, rows=rows)
    figure = draw_curves(find_jobs(sweep)[0])
    axis = figure.axes[0]
    (bars,) = axis.containers  # one error bar: mean ± std over the two seeds
    (x,), (y,) = bars.lines[0].get_data()
    assert (x, y) == (0, pytest.approx(0.65))
    assert bars.lines[0].get_marker() == "o"
    assert axis.get_xlim() == (-0.5, 0.5)

    sweep = tmp_path / "three"
    rows = [{"epoch": e, "step": e, "val/zsl_acc": 0.5 + e / 10} for e in range(3)]
    make_override_job(sweep, 0, ["seed=1"], {"val/zsl_acc": 0.7}, rows=rows)
    axis = draw_curves(find_jobs(sweep)[0]).axes[0]
    (line,) = axis.get_lines()
    assert line.get_marker() == "o" and list(line.get_xdata()) == [0, 1, 2]
    assert axis.get_xlim() == (-0.5, 2.5)


def test_the_protocol_and_leaderboard_bars_keep_their_legend_beside_the_axes(tmp_path, monkeypatch):
    """Bars that reach 0.8–1.0 (APY's first row) were covered by a legend drawn inside."""
    import matplotlib.pyplot as plt

    from src.protocol.report import leaderboard, results

    figures = []
    monkeypatch.setattr(plt, "close", figures.append)
    metrics = ("test/zsl_acc", "test/gzsl_H_cal")
    rows = [{"name": f"row{i}"} | {m: 0.95 for m in metrics} for i in range(4)]
    results.plot(rows, "title", tmp_path / "protocol.png")
    board = [
        {"dataset": "apy", "row": r["name"], "chosen": i == 0}
        | {f"{m}{end}": 0.95 for m in metrics for end in ("", "_ci_low", "_ci_high")}
        for i, r in enumerate(rows)
    ]
    leaderboard.plot(board, ["apy"], tmp_path / "leaderboard.png")
    assert len(figures) == 2
    for figure in figures:
        figure.canvas.draw()
        axis = figure.axes[0]
        legend = axis.get_legend().get_window_extent()
        assert legend.x0 >= axis.get_window_extent().x1  # right of the bars, not over them
    for name in ("protocol.png", "leaderboard.png"):
        assert (tmp_path / name).stat().st_size > 10_000


# --------------------------------------------------------------------- W&B (item 5)
def test_per_class_cells_reach_wandb_as_numbers():
    assert [_cell(c) for c in ("3", "1.000000", "", "bird", "0.25")] == [3, 1.0, None, "bird", 0.25]


def wandb_records(run_file: Path, kind: str) -> dict:
    """The ``config`` or ``summary`` records of an offline run, applied in order (see
    ``tests/test_wandb_offline.py``: a LevelDB-style log of protobuf records)."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, pos, block, pending = run_file.read_bytes(), 7, 32768, b""
    found: dict = {}
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, chunk_kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        if chunk_kind in (2, 3):
            pending = chunk if chunk_kind == 2 else pending + chunk
            continue
        if chunk_kind not in (1, 4):
            continue
        record = wandb_internal_pb2.Record()
        record.ParseFromString(chunk if chunk_kind == 1 else pending + chunk)
        if record.WhichOneof("record_type") == kind:
            for item in getattr(record, kind).update:
                found[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return found


# ---------------------------------------------- metrics.json and W&B: provenance (item 6)
@pytest.mark.slow
def test_metrics_json_and_wandb_name_the_code_and_the_selected_epoch(tmp_path, monkeypatch):
    from src.train import train

    monkeypatch.setenv("WANDB_MODE", "offline")
    out = tmp_path / "run"
    overrides = ["+experiment=hard_neg", "data.split_mode=val", "trainer.max_epochs=3"]
    train(compose_config([*QUIET, *overrides, "logger=wandb"], out))
    metrics = json.loads((out / "metrics.json").read_text())
    with (out / "csv" / "metrics.csv").open() as f:
        curve = {
            int(r["epoch"]): float(r["val/zsl_acc"]) for r in csv.DictReader(f) if r["val/zsl_acc"]
        }
    best = max(curve, key=lambda e: (curve[e], -e))  # the first epoch of the best score
    assert metrics["epoch/selected"] == best and metrics["val/zsl_acc"] == curve[best]
    assert (metrics["epoch/last"], metrics["epoch/warmup"]) == (2, 1)
    assert metrics["code/commit"] == git("rev-parse", "HEAD")
    assert metrics["code/dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))
    assert metrics["code/version"]

    (run_file,) = out.glob("wandb/offline-run-*/run-*.wandb")
    config = wandb_records(run_file, "config")
    assert config["code"]["commit"] == metrics["code/commit"]
    assert config["epoch"] == {"selected": best, "last": 2, "warmup": 1}
    assert config["model"]["_target_"].endswith("MetricZSLSystem")  # the nested config…
    assert not {"rank", "lr", "feature_dim", "beta"} & set(config)  # …and no flattened copy
    (table,) = out.glob("wandb/offline-run-*/files/media/table/val/per_class_*.table.json")
    table = json.loads(table.read_text())
    column = table["columns"].index("zsl_acc")
    cells = [row[column] for row in table["data"]]
    assert None in cells and all(c is None or isinstance(c, float) for c in cells)


# ---------------------------------------- src.eval: val classes it trained on (item 7)
@pytest.mark.slow
def test_eval_of_a_trainval_checkpoint_on_val_says_it_trained_on_those_classes(tmp_path, caplog):
    from src.eval import evaluate
    from src.train import train

    out = tmp_path / "run"
    train(compose_config([*QUIET, "trainer.max_epochs=1"], out))
    ckpt = out / "checkpoints" / "last.ckpt"
    overrides = [f"ckpt_path={ckpt}", "data.split_mode=val"]
    with caplog.at_level(logging.WARNING, logger="src.eval"):
        evaluate(compose_config(overrides, tmp_path / "eval", config_name="eval"))
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"ckpt_path={ckpt} was trained with data.split_mode=test")
    assert "not zero-shot ones" in warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="src.eval"):
        evaluate(compose_config([f"ckpt_path={ckpt}"], tmp_path / "test", config_name="eval"))
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


# -------------------------------------------- per-class mean vs torchmetrics (item 10)
def test_per_class_mean_runs_over_the_target_classes_where_torchmetrics_macro_does_not():
    """What the README says: the two differ on the classes averaged over, not on a target class
    that is never predicted (0 in both)."""
    import torch
    from torchmetrics.classification import MulticlassAccuracy

    from src.metrics.zsl import class_counts, mean_class_accuracy

    labels = torch.tensor([0, 0, 1, 1])
    off_target = torch.tensor([0, 0, 2, 2])  # class 1's images go to class 2, not a target
    correct, total = class_counts(off_target, labels, 3)
    assert float(mean_class_accuracy(correct, total, torch.tensor([0, 1]))) == 0.5
    macro = MulticlassAccuracy(num_classes=3, average="macro")(off_target, labels)
    assert float(macro) == pytest.approx(1 / 3)

    never_1 = torch.tensor([0, 0, 0, 0])  # class 1 never predicted: 0 for it in both
    correct, total = class_counts(never_1, labels, 2)
    assert float(mean_class_accuracy(correct, total, torch.tensor([0, 1]))) == 0.5
    assert float(MulticlassAccuracy(num_classes=2, average="macro")(never_1, labels)) == 0.5


def test_protocol_csv_names_the_code_that_wrote_it_and_recompute_reads_it(tmp_path):
    from src.protocol.report.recompute import read_csv
    from src.protocol.report.results import write_csv

    row = {"name": "hardest", "kind": "tuned", "test/zsl_acc": 0.5, "runs": 2, "chosen": "{}"}
    write_csv([row], tmp_path / "protocol.csv")
    with (tmp_path / "protocol.csv").open() as f:
        (written,) = list(csv.DictReader(f))
    code = json.loads(written["code"])
    assert code["commit"] == git("rev-parse", "HEAD")
    assert code["dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))
    (read,) = read_csv(tmp_path)
    assert read["code"] == written["code"] and read["test/zsl_acc"] == 0.5
