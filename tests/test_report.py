"""The sweep report: exact aggregation on hand-made job folders, and on a real multirun."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_utils import run_cli
from omegaconf import OmegaConf

from src.report import report

QUIET_ARGS = ["print_config=false", "callbacks.rich_progress_bar=null"]


def make_job(
    sweep: Path, num: int, miner: str, seed: int, zsl: float | None, curve=(), error: str = ""
) -> Path:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    hydra = {"hydra": {"runtime": {"choices": {"data": "synthetic", "miner": miner}}}}
    OmegaConf.save(OmegaConf.create(hydra), job / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create({"seed": seed}), job / ".hydra" / "config.yaml")
    if zsl is not None:
        (job / "metrics.json").write_text(json.dumps({"val/zsl_acc": zsl, "train/loss": 1.0}))
    if error:
        (job / "failure.txt").write_text(f"Traceback ...\nValueError: {error}\n")
    if curve:
        (job / "csv").mkdir()
        with (job / "csv" / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=["epoch", "step", "val/zsl_acc", "train/loss"])
            writer.writeheader()
            for epoch, value in enumerate(curve):
                writer.writerow({"epoch": epoch, "step": epoch, "val/zsl_acc": value})
                writer.writerow({"epoch": epoch, "step": epoch, "train/loss": 0.5})
    return job


def test_report_aggregates_exactly_and_lists_failures_and_skips(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_job(sweep, 0, "random", 1, 0.50, curve=(0.2, 0.4))
    make_job(sweep, 1, "random", 2, 0.60, curve=(0.3, 0.5))
    make_job(sweep, 2, "hardest", 1, 0.80, curve=(0.4, 0.7))
    make_job(sweep, 3, "hardest", 2, None, error="miner.num_negatives=100 is invalid")
    make_job(sweep, 4, "hardest", 3, None)  # still running
    rows = {row["miner"]: row for row in report(sweep)}

    assert rows["random"]["runs"] == 2 and rows["random"]["failed"] == 0
    assert rows["random"]["val/zsl_acc mean"] == pytest.approx(0.55)
    assert rows["random"]["val/zsl_acc std"] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert rows["hardest"]["runs"] == 1 and rows["hardest"]["failed"] == 1
    assert rows["hardest"]["val/zsl_acc mean"] == pytest.approx(0.80)

    markdown = (sweep / "report.md").read_text()
    assert "| synthetic | metric | random | 2 | 0 | 1 2 | 0.550 ± 0.071 |" in markdown
    assert "4 (miner=hardest, seed=3): incomplete, no metrics.json" in markdown
    table = list(csv.DictReader((sweep / "report.csv").open()))
    assert [r["miner"] for r in table] == ["hardest", "random"]
    assert (sweep / "curves.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "failed: 3 (miner=hardest, seed=2): ValueError: miner.num_negatives=100" in printed


def make_override_job(
    sweep: Path, num: int, overrides: list[str], metrics: dict | None, rows=(), miner="random"
) -> Path:
    """A job folder as Hydra and src.train write it, with its command-line overrides."""
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    seed = int(next((o.split("=")[1] for o in overrides if o.startswith("seed=")), 0))
    hydra = {"hydra": {"runtime": {"choices": {"data": "synthetic", "miner": miner}}}}
    OmegaConf.save(OmegaConf.create(hydra), job / ".hydra" / "hydra.yaml")
    OmegaConf.save(OmegaConf.create({"seed": seed}), job / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), job / ".hydra" / "overrides.yaml")
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps(metrics))
    if rows:
        (job / "csv").mkdir()
        with (job / "csv" / "metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=sorted({k for r in rows for k in r}))
            writer.writeheader()
            writer.writerows(rows)
    return job


def test_report_has_a_row_per_setting_with_the_real_seeds(tmp_path):
    """`miner.num_negatives=2,20 seed=1,2` is two settings of two seeds, not one of four."""
    sweep = tmp_path / "sweep"
    values = {("2", 1): 0.5, ("2", 2): 0.7, ("20", 1): 0.9, ("20", 2): 0.8}
    for num, ((k, seed), zsl) in enumerate(values.items()):
        overrides = ["+experiment=hard_neg", f"miner.num_negatives={k}", f"seed={seed}"]
        make_override_job(sweep, num, overrides, {"val/zsl_acc": zsl})
    rows = report(sweep)
    assert [(r["miner.num_negatives"], r["runs"], r["seeds"]) for r in rows] == [
        ("2", 2, "1 2"),
        ("20", 2, "1 2"),
    ]
    assert rows[0]["val/zsl_acc mean"] == pytest.approx(0.6)
    assert rows[1]["val/zsl_acc mean"] == pytest.approx(0.85)
    header = (sweep / "report.csv").read_text().splitlines()[0]
    assert header.startswith("data,model,miner,miner.num_negatives,runs,failed,seeds,")
    assert (
        "| synthetic | metric | random | 20 | 2 | 0 | 1 2 | 0.850 ± 0.071 |"
        in (sweep / "report.md").read_text()
    )


def test_the_jobs_of_a_search_sweeper_are_one_row_each(tmp_path):
    sweep = tmp_path / "search"
    for num, lr in enumerate(("0.001", "0.0003", "0.004")):
        overrides = [f"model.lr={lr}", "miner.num_negatives=5"]
        make_override_job(sweep, num, overrides, {"val/zsl_acc": 0.5 + num / 10})
    rows = report(sweep)
    assert [(r["model.lr"], r["runs"], r["seeds"]) for r in rows] == [
        ("0.0003", 1, "0"),
        ("0.001", 1, "0"),
        ("0.004", 1, "0"),
    ]
    assert "miner.num_negatives" not in rows[0]  # the same in every trial: not a setting


def test_report_columns_come_in_a_fixed_order(tmp_path):
    sweep = tmp_path / "sweep"
    metrics = {f"val/{k}": 0.5 for k in ("zsl_top5", "gamma", "ausuc", "gzsl_H", "zsl_acc")}
    make_override_job(sweep, 0, ["seed=1"], metrics)
    header = (report(sweep) and (sweep / "report.csv").read_text()).splitlines()[0].split(",")
    assert [h.removesuffix(" mean") for h in header if h.endswith(" mean")] == [
        "val/zsl_acc",
        "val/gzsl_H",
        "val/ausuc",
        "val/gamma",
        "val/zsl_top5",
    ]


@pytest.mark.slow
def test_report_column_order_is_the_same_in_every_process(tmp_path):
    """String hashing differs between processes: set order must never reach the table."""
    sweep = tmp_path / "sweep"
    metrics = {f"val/{k}": 0.5 for k in ("zsl_top5", "gamma", "ausuc", "gzsl_s_cal", "zsl_acc")}
    make_override_job(sweep, 0, ["seed=1"], metrics)
    headers = set()
    for hash_seed in ("1", "2", "3", "4"):
        run_cli("src.report", [str(sweep)], env={"PYTHONHASHSEED": hash_seed})
        headers.add((sweep / "report.csv").read_text().splitlines()[0])
    assert len(headers) == 1


def test_report_names_running_interrupted_and_failed_jobs(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    make_override_job(sweep, 0, ["miner=random", "seed=1"], {"val/zsl_acc": 0.5})
    running = make_override_job(sweep, 1, ["miner=hardest", "seed=1"], None, miner="hardest")
    killed = make_override_job(sweep, 2, ["miner=hardest", "seed=2"], None, miner="hardest")
    marker = {"host": socket.gethostname(), "started": "2026-01-01T00:00:00"}
    (running / ".running.json").write_text(json.dumps({**marker, "pid": os.getpid()}))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (killed / ".running.json").write_text(json.dumps({**marker, "pid": dead.pid}))
    report(sweep)
    markdown = (sweep / "report.md").read_text()
    assert f"1 (miner=hardest, seed=1): running, no metrics.json (pid {os.getpid()}" in markdown
    assert (
        f"2 (miner=hardest, seed=2): interrupted, no metrics.json (its process (pid {dead.pid}"
        in (markdown)
    )


def test_curves_label_the_std_band(tmp_path):
    from src.report import find_jobs
    from src.sweeps.curves import draw_curves

    sweep = tmp_path / "sweep"
    for num, seed in enumerate((1, 2)):
        curve = [
            {"epoch": e, "step": e, "val/zsl_acc": 0.5 + e / 10 + seed / 100} for e in range(3)
        ]
        make_override_job(sweep, num, [f"seed={seed}"], {"val/zsl_acc": 0.7}, rows=curve)
    figure = draw_curves(find_jobs(sweep)[0])
    assert "± 1 sample std" in figure._suptitle.get_text()
    legend = figure.axes[0].get_legend()
    assert "band: ± 1 std" in legend.get_title().get_text()
    assert [t.get_text() for t in legend.get_texts()] == ["random (n=2)"]


def test_a_test_mode_sweep_plots_training_curves_and_says_how_to_get_validation_ones(tmp_path):
    sweep = tmp_path / "sweep"
    for num, seed in enumerate((1, 2)):
        curve = [
            {"epoch": e, "step": e, "train/loss": 1.0 - e / 10, "pool/wrong_side_fraction": 0.1}
            for e in range(3)
        ]
        make_override_job(sweep, num, [f"seed={seed}"], {"test/zsl_acc": 0.9}, rows=curve)
    report(sweep)
    assert (sweep / "curves.png").stat().st_size > 10_000
    assert "run the sweep with data.split_mode=val" in (sweep / "report.md").read_text()


def test_report_rejects_a_folder_without_jobs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no job folders"):
        report(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such multirun folder"):
        report(tmp_path / "missing")


@pytest.mark.slow
def test_multirun_survives_a_failing_job_and_reports_it(tmp_path):
    """A real sweep: the job with an invalid K fails, the others finish, the report says so."""
    args = [
        "-m",
        "+experiment=hard_neg",
        "miner=random,hardest",
        "miner.num_negatives=3,100",
        "data.split_mode=val",
        "trainer.max_epochs=2",
        "print_config=false",
        "callbacks.rich_progress_bar=null",
        f"paths.log_dir={tmp_path}",
    ]
    result = run_cli("src.train", args, check=False, timeout=600)
    assert result.returncode != 0  # the sweep reports its failures with its exit status
    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert len(jobs) == 4
    finished = [j for j in jobs if (j / "metrics.json").is_file()]
    failed = [j for j in jobs if (j / "failure.txt").is_file()]
    assert len(finished) == 2 and len(failed) == 2
    assert all("miner.num_negatives=100" in (j / "failure.txt").read_text() for j in failed)

    rows = report(sweeps[0])  # K = 3 and K = 100 are different settings
    assert [(r["miner"], r["miner.num_negatives"], r["runs"], r["failed"]) for r in rows] == [
        ("hardest", "3", 1, 0),
        ("hardest", "100", 0, 1),
        ("random", "3", 1, 0),
        ("random", "100", 0, 1),
    ]
    assert (sweeps[0] / "curves.png").is_file()


@pytest.mark.slow
def test_resume_sweep_skips_finished_jobs_and_completes_the_others(tmp_path):
    args = [
        "-m",
        "+experiment=hard_neg",
        "seed=1,2",
        "trainer.max_epochs=2",
        "print_config=false",
        "callbacks.rich_progress_bar=null",
        f"paths.log_dir={tmp_path}",
    ]

    def sweep(*extra: str) -> subprocess.CompletedProcess:
        return run_cli("src.train", [*args, *extra])

    assert sweep().returncode == 0
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    finished, interrupted = folder / "0", folder / "1"
    stamp = (finished / "metrics.json").stat().st_mtime_ns
    untouched = snapshot(finished)
    expected = json.loads((interrupted / "metrics.json").read_text())
    (interrupted / "metrics.json").unlink()  # as if the job had been killed after its epochs

    result = sweep(f"resume_sweep={folder}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert list((tmp_path / "train" / "multiruns").iterdir()) == [folder]  # no new sweep
    assert (finished / "metrics.json").stat().st_mtime_ns == stamp  # skipped, untouched
    log = (interrupted / "train.log").read_text()
    assert "continuing the interrupted job" in log
    resumed = json.loads((interrupted / "metrics.json").read_text())
    assert resumed["test/zsl_acc"] == expected["test/zsl_acc"]
    assert snapshot(finished) == untouched  # .hydra/, log, CSV, checkpoints: byte for byte
    with (interrupted / "csv" / "metrics.csv").open() as f:
        logged = list(csv.DictReader(f))
    assert sorted(int(r["epoch"]) for r in logged if r.get("train/loss")) == [0, 1]  # kept
    assert len([r for r in logged if r.get("test/zsl_acc")]) == 1


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Content and modification time of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.slow
def test_resume_sweep_with_another_grid_or_a_missing_folder_stops_before_writing(tmp_path):
    args = ["-m", "+experiment=hard_neg", "trainer.max_epochs=1", *QUIET_ARGS]

    def sweep(*extra: str) -> subprocess.CompletedProcess:
        return run_cli("src.train", [*args, f"paths.log_dir={tmp_path}", *extra], check=False)

    assert sweep("miner=random,hardest").returncode == 0
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    before = snapshot(folder)

    changed = sweep("miner=hardest,random", f"resume_sweep={folder}")  # the grid reordered
    assert changed.returncode != 0
    assert "job 0: miner (random → hardest); job 1: miner (hardest → random)" in changed.stderr
    assert "nothing was written" in changed.stderr
    assert snapshot(folder) == before  # multirun.yaml, .hydra/, results: all as they were

    missing = sweep("miner=random,hardest", f"resume_sweep={tmp_path / 'typo'}")
    assert missing.returncode != 0
    assert f"resume_sweep={tmp_path / 'typo'}: no such folder" in missing.stderr
    assert not (tmp_path / "typo").exists()
    assert list((tmp_path / "train" / "multiruns").iterdir()) == [folder]  # no new sweep


# ------------------------------------------------- what the report writes, and where (issue 35)
def test_a_half_written_grid_names_the_jobs_that_never_started(tmp_path, capsys):
    """The grid comes from multirun.yaml: jobs 2 and 3 never got a folder (the sweep was
    killed during job 1), and the report names them beside the interrupted one."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    hydra = {
        "sweeper": {
            "_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
            "max_batch_size": None,
            "params": None,
        },
        "sweep": {"dir": str(sweep), "subdir": "${hydra.job.num}"},
        "overrides": {"task": ["miner=random,hardest", "seed=1,2", "trainer.max_epochs=2"]},
    }
    OmegaConf.save(OmegaConf.create({"hydra": hydra}), sweep / "multirun.yaml")
    fixed = "trainer.max_epochs=2"
    make_override_job(sweep, 0, ["miner=random", "seed=1", fixed], {"val/zsl_acc": 0.5})
    make_override_job(sweep, 1, ["miner=random", "seed=2", fixed], None)
    report(sweep)
    markdown, console = (sweep / "report.md").read_text(), capsys.readouterr().out
    assert "- 1 (miner=random, seed=2): incomplete, no metrics.json" in markdown
    for num, point in ((2, "miner=hardest, seed=1"), (3, "miner=hardest, seed=2")):
        note = f"job {num} ({point}): not started, no folder"
        assert f"- {note}" in markdown and note in console
    assert "job 0 (" not in markdown and "job 1 (" not in markdown


def report_command(folder: Path, capsys, monkeypatch) -> tuple[int, str]:
    from src.report import main

    capsys.readouterr()  # what ran before
    monkeypatch.setattr(sys, "argv", ["src/report.py", str(folder)])
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_report_on_a_finished_run_is_one_line_and_leaves_it_byte_identical(
    tmp_path, capsys, monkeypatch
):
    from hydra_utils import compose_config

    from src.train import train

    run = tmp_path / "run"
    train(compose_config([*QUIET_ARGS, "trainer.max_epochs=1"], run))
    (run / ".hydra").mkdir(exist_ok=True)  # as Hydra's launch leaves it
    before = snapshot(run)
    code, console = report_command(run, capsys, monkeypatch)
    assert code == 1 and "Traceback" not in console
    assert console.strip() == (
        f"Error: {run} is one run, not a sweep: its results are {run}/metrics.json (and its "
        "log, train.log); nothing was written. src.report reads a multirun folder "
        "(outputs/<task>/multiruns/<date>_<time>_<tag>)."
    )
    assert snapshot(run) == before
