"""logger=wandb offline: the run holds metrics and config, and no secret reaches any output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FAKE_KEY = "local-" + "c0ffee" * 6 + "f00d"  # recognisable, never a real key


@pytest.mark.slow
def test_offline_wandb_run_holds_metrics_and_config_and_no_secret(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    env["WANDB_API_KEY"] = FAKE_KEY
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.train",
            "+experiment=hard_neg",
            "logger=wandb",
            "trainer.max_epochs=2",
            f"paths.log_dir={tmp_path}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert FAKE_KEY not in result.stdout + result.stderr

    (run_dir,) = (tmp_path / "train" / "runs").iterdir()
    (wandb_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    written = wandb_file.read_bytes()
    for expected in (b"test/zsl_acc", b"test/gzsl_H", b"pool/mean_d_neg", b"train/loss"):
        assert expected in written, expected  # logged metrics reached the W&B run
    for expected in (b"selection_metric", b"UncertaintyCorrelationMiner"):
        assert expected in written, expected  # and so did the resolved config
    for expected in (b"test/per_class", b"test/confusion"):
        assert expected in written, expected  # per-class table and confusion matrix
    assert list(run_dir.glob("wandb/offline-run-*/files/media/images/test/confusion*.png"))

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) > 5
    for path in files:
        assert FAKE_KEY.encode() not in path.read_bytes(), f"secret leaked into {path}"


@pytest.mark.slow
def test_each_sweep_job_is_its_own_wandb_run_in_the_sweep_group(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WANDB_MODE": "offline"}
    command = [sys.executable, "-m", "src.train", "-m", "+experiment=hard_neg", "logger=wandb"]
    command += ["miner=random,hardest", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    runs = sorted(sweep.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(runs) == 2  # one W&B run per job, each finished before the next started
    for run, miner in zip(runs, ("random", "hardest"), strict=True):
        written = run.read_bytes()
        assert sweep.name.encode() in written  # group: the sweep
        assert miner.encode() in written  # job type: the strategy
