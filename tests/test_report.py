"""The sweep report: exact aggregation on hand-made job folders, and on a real multirun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.report import report

ROOT = Path(__file__).resolve().parents[1]


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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "src.train", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode != 0  # the sweep reports its failures with its exit status
    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir())
    assert len(jobs) == 4
    finished = [j for j in jobs if (j / "metrics.json").is_file()]
    failed = [j for j in jobs if (j / "failure.txt").is_file()]
    assert len(finished) == 2 and len(failed) == 2
    assert all("miner.num_negatives=100" in (j / "failure.txt").read_text() for j in failed)

    rows = {row["miner"]: row for row in report(sweeps[0])}
    assert {m: (r["runs"], r["failed"]) for m, r in rows.items()} == {
        "hardest": (1, 1),
        "random": (1, 1),
    }
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
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}

    def sweep(*extra: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "src.train", *args, *extra]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)

    assert sweep().returncode == 0
    (folder,) = (tmp_path / "train" / "multiruns").iterdir()
    finished, interrupted = folder / "0", folder / "1"
    stamp = (finished / "metrics.json").stat().st_mtime_ns
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
