"""Issue 19: a run folder has one owner.

A job claims its folder (``.lock``, ``flock``) when Hydra resolves its log file, before
``.hydra/`` and the log are written; a second job there is refused in one line and writes
nothing; a lock left by a killed process is recovered. The other process of each test is a
real one.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from cli_utils import cli_command, cli_env
from hydra_utils import QUIET, compose_config
from omegaconf import OmegaConf

from src.runs.folder import RunFolderError, hydra_output_subdir, job_log_file, refuse_if_running
from src.runs.lock import LOCK_FILE, claim, holds, owner, release
from src.sweeps.check import ResumeSweepCheck, ResumeSweepRefused

HOLDER = """
import sys, time
from src.runs.lock import claim
print("held" if claim(sys.argv[1]) else "refused", flush=True)
time.sleep(120)
"""


@pytest.fixture
def held(tmp_path):
    """``held(folder)`` → a live process that owns ``folder`` (killed at the test's end)."""
    started = []

    def hold(folder: Path) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder)],
            env=cli_env(),
            stdout=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield hold
    for process in started:
        process.kill()
        process.wait()


def test_a_folder_has_one_owner_until_it_is_released(tmp_path):
    folder = tmp_path / "run"
    assert claim(folder) and holds(folder)
    assert claim(folder)  # this process again: still its owner
    info = owner(folder)
    assert info["pid"] == os.getpid() and set(info) == {"host", "pid", "started"}
    release(folder)
    assert not holds(folder) and not (folder / LOCK_FILE).exists()
    release(folder)  # a no-op once released
    assert claim(folder)
    release(folder)


def test_another_live_owner_is_refused_and_a_killed_ones_lock_is_recovered(held, tmp_path):
    folder = tmp_path / "run"
    other = held(folder)
    assert not claim(folder) and not holds(folder)
    # Hydra's files for this job: no log (os.devnull), no .hydra/ record
    assert job_log_file(str(folder), "train") == os.devnull
    assert hydra_output_subdir(str(folder)) is None
    with pytest.raises(RunFolderError, match=rf"in use by a running job \(pid {other.pid} on "):
        refuse_if_running(folder)
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]  # nothing written
    other.send_signal(signal.SIGKILL)
    other.wait()
    assert json.loads((folder / LOCK_FILE).read_text())["pid"] == other.pid  # left behind
    assert claim(folder)  # the kernel released the killed process's lock
    assert owner(folder)["pid"] == os.getpid()
    assert job_log_file(str(folder), "train") == str(folder / "train.log")
    assert hydra_output_subdir(str(folder)) == ".hydra"
    release(folder)


def test_processes_of_rank_above_zero_share_rank_zeros_folder(held, tmp_path, monkeypatch):
    folder = tmp_path / "run"
    held(folder)
    monkeypatch.setenv("LOCAL_RANK", "1")  # a DDP process started in rank 0's folder
    assert claim(folder)
    assert job_log_file(str(folder), "train") == str(folder / "train.log")


def test_eval_and_protocol_refuse_a_folder_in_use(held, tmp_path):
    from src.eval import evaluate
    from src.protocol import run as protocol

    for config, job in (("eval", evaluate), ("protocol", protocol)):
        folder = tmp_path / config
        other = held(folder)
        cfg = compose_config(
            [*QUIET[:1], "ckpt_path=/nowhere/last.ckpt"] if config == "eval" else [],
            folder,
            config,
        )
        with pytest.raises(RunFolderError, match=rf"in use by a running job \(pid {other.pid}"):
            job(cfg)
        assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE]


def test_a_sweep_folder_in_use_is_refused_before_any_job(held, tmp_path):
    sweep = tmp_path / "sweep"
    config = OmegaConf.create({"resume_sweep": None, "hydra": {"sweep": {"dir": str(sweep)}}})
    other = held(sweep)
    with pytest.raises(ResumeSweepRefused, match=rf"in use by a running sweep \(pid {other.pid}"):
        ResumeSweepCheck().on_multirun_start(config)
    other.kill()
    other.wait()
    check = ResumeSweepCheck()
    check.on_multirun_start(config)  # recovered: this sweep holds it until its end
    assert holds(sweep)
    check.on_multirun_end(config)
    assert not holds(sweep) and not (sweep / LOCK_FILE).exists()


@pytest.mark.slow
def test_two_trainings_started_together_in_one_folder(tmp_path):
    """The issue's case: seed 0 and seed 5 in one ``hydra.run.dir``. One finishes; the other
    is refused in one line, and the folder holds the winner's run alone."""
    folder = tmp_path / "run"
    env = cli_env({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    processes = {
        seed: subprocess.Popen(
            cli_command(
                "src.train",
                [*QUIET, f"seed={seed}", "trainer.max_epochs=3", f"hydra.run.dir={folder}"],
            ),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 5)
    }
    start = time.monotonic()
    results = {seed: (p.wait(timeout=600), *p.communicate()) for seed, p in processes.items()}
    assert time.monotonic() - start < 600
    winners = [seed for seed, (code, _, _) in results.items() if code == 0]
    assert len(winners) == 1, results
    (winner,) = winners
    (loser,) = {0, 5} - {winner}
    code, out, err = results[loser]
    assert code == 1 and out == ""
    assert err.strip().count("\n") == 0, err
    assert err.startswith(f"Error: {folder} is in use by a running job (pid ")
    # one run's record: its config, its Hydra overrides, its metrics, its epochs once each
    assert yaml.safe_load((folder / "config.yaml").read_text())["seed"] == winner
    assert f"seed={winner}" in yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    with (folder / "csv" / "metrics.csv").open(newline="") as f:
        epochs = [int(row["epoch"]) for row in csv.DictReader(f) if row.get("train/loss")]
    assert epochs == [0, 1, 2]
    assert (folder / "metrics.json").is_file()
    assert not (folder / LOCK_FILE).exists() and not (folder / "failure.txt").exists()
