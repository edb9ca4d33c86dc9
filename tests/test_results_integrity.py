"""Results that never lie and are never lost: run folders, resumes, checkpoints, evaluation.

Every test here reproduces a way the framework used to lose or mislabel results (embedded
synthetic data, 1–3 epochs each).
"""

from __future__ import annotations

import builtins
import csv
import errno
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch
from hydra_utils import QUIET, compose_config

from src.eval import evaluate
from src.runs.checkpoints import AtomicCheckpointIO, CheckpointError
from src.runs.config_diff import differing_keys
from src.runs.folder import RunFolderError
from src.train import train

BASE = [*QUIET, "trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> Path:
    """A finished 2-epoch run (test mode); tests must leave it as it is."""
    out = tmp_path_factory.mktemp("first") / "run"
    train(compose_config(BASE, out))
    return out


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "csv" / "metrics.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def train_rows(run: Path) -> dict[int, dict[str, str]]:
    """Epoch → its training row; fails when an epoch appears twice."""
    found: dict[int, dict[str, str]] = {}
    for row in rows(run):
        if row.get("train/loss"):
            epoch = int(row["epoch"])
            assert epoch not in found, f"epoch {epoch} logged twice in {run}"
            found[epoch] = row
    return found


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Content and modification time of every file under ``folder``."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# ------------------------------------------------------------------------- run folders
def test_a_finished_run_folder_is_never_written_into(first):
    before = snapshot(first)
    with pytest.raises(
        RunFolderError, match=r"holds a finished run \(metrics\.json\).*overwrite=true"
    ):
        train(compose_config(BASE, first))
    with pytest.raises(RunFolderError, match=r"holds a finished run"):
        evaluate(
            compose_config(
                [f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"], first, config_name="eval"
            )
        )
    assert snapshot(first) == before  # no metrics.json, config.yaml, CSV or failure.txt touched


def test_overwrite_true_replaces_a_finished_run_without_versioned_checkpoints(tmp_path):
    out = tmp_path / "run"
    train(compose_config([*QUIET, "trainer.max_epochs=1"], out))
    metrics = train(compose_config([*QUIET, "trainer.max_epochs=1", "overwrite=true"], out))
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch_000.ckpt",
        "last.ckpt",
    ]
    assert sorted(train_rows(out)) == [0]


def test_a_folder_in_use_by_a_running_job_is_refused(first, tmp_path):
    import socket
    import subprocess
    import sys

    folder = tmp_path / "busy"
    shutil.copytree(first / "checkpoints", folder / "checkpoints")  # an unfinished run
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        marker = {"host": socket.gethostname(), "pid": other.pid, "started": "now"}
        (folder / ".running.json").write_text(json.dumps(marker))
        before = snapshot(folder)
        ckpt = folder / "checkpoints" / "last.ckpt"
        cfg = compose_config([*BASE, "trainer.max_epochs=3", f"ckpt_path={ckpt}"], folder)
        with pytest.raises(RunFolderError, match=rf"in use by a running job \(pid {other.pid}"):
            train(cfg)
        assert snapshot(folder) == before
    finally:
        other.kill()
        other.wait()


# ------------------------------------------------------------------------ ckpt_path resumes
def test_ckpt_path_resume_keeps_the_history_and_applies_the_new_lr(first, tmp_path):
    out = tmp_path / "resumed"
    overrides = [*QUIET, "trainer.max_epochs=3", "model.lr=0.05"]
    train(compose_config([*overrides, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"], out))
    history, earlier = train_rows(out), train_rows(first)
    assert sorted(history) == [0, 1, 2]  # every epoch, once, in the new folder
    for epoch in (0, 1):
        assert history[epoch]["train/loss"] == earlier[epoch]["train/loss"]
    assert len([r for r in rows(out) if r.get("test/zsl_acc")]) == 1  # only the new test
    optimiser = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    lrs = {g["lr"] for state in optimiser["optimizer_states"] for g in state["param_groups"]}
    assert lrs == {0.05}  # the new lr reached the optimiser, as config.yaml says
    assert "lr: 0.05" in (out / "config.yaml").read_text()


def test_resume_refuses_settings_it_cannot_apply(first, tmp_path):
    out = tmp_path / "resumed"
    ckpt = first / "checkpoints" / "last.ckpt"
    cfg = compose_config([*BASE, "miner=hardest", "seed=5", f"ckpt_path={ckpt}"], out)
    with pytest.raises(CheckpointError, match=r"miner\._target_ .*, seed \(0 → 5\)") as info:
        train(cfg)
    assert "\n" not in str(info.value)
    assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()


def test_a_target_spelt_by_its_package_is_the_same_setting():
    """Configs once named classes by their package (``src.models.MetricZSLSystem``); a run
    saved so is still resumed as the same run, while another class is still refused."""
    saved = {
        "model._target_": "src.models.MetricZSLSystem",
        "callbacks.model_checkpoint._target_": "src.callbacks.RunCheckpoint",
    }
    now = {
        "model._target_": "src.models.system.MetricZSLSystem",
        "callbacks.model_checkpoint._target_": "src.callbacks.checkpoint.RunCheckpoint",
    }
    assert differing_keys(saved, now) == []
    other = {**now, "model._target_": "src.models.eszsl.ESZSLClassifier"}
    assert differing_keys(saved, other) == ["model._target_"]
    assert differing_keys({"x._target_": "gone.Class"}, {"x._target_": "gone.Class"}) == []


def test_resume_and_eval_refuse_another_dataset(first, tmp_path):
    ckpt = first / "checkpoints" / "last.ckpt"
    other = "data.generator.seed=1"  # same d and k, other dataset
    pattern = (
        r"trained on synthetic\(seed=0\) \[\w+\], but the configured data is synthetic\(seed=1\)"
    )
    with pytest.raises(CheckpointError, match=pattern):
        train(compose_config([*BASE, other, f"ckpt_path={ckpt}"], tmp_path / "resumed"))
    with pytest.raises(CheckpointError, match=pattern):
        evaluate(compose_config([other, f"ckpt_path={ckpt}"], tmp_path / "e", config_name="eval"))


def test_a_damaged_checkpoint_names_the_valid_one_beside_it(first, tmp_path):
    folder = tmp_path / "copy" / "checkpoints"
    shutil.copytree(first / "checkpoints", folder)
    (folder / "last.ckpt").write_bytes(b"")  # what a kill during a non-atomic save left
    cfg = compose_config([*BASE, f"ckpt_path={folder / 'last.ckpt'}"], tmp_path / "resumed")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint .*epoch_001\.ckpt"):
        train(cfg)


def test_a_run_resumed_elsewhere_still_selects_over_the_earlier_epochs(tmp_path):
    """On the embedded data (seed 0) this run's validation ZSL drops from epoch 0 to epoch 1."""
    val = [*QUIET, "+experiment=hard_neg", "data.split_mode=val"]
    first_half = tmp_path / "first_half"
    train(compose_config([*val, "trainer.max_epochs=1"], first_half))
    before = snapshot(first_half)
    resumed = tmp_path / "resumed"
    ckpt = first_half / "checkpoints" / "last.ckpt"
    metrics = train(compose_config([*val, "trainer.max_epochs=2", f"ckpt_path={ckpt}"], resumed))
    curve = {
        int(r["epoch"]): float(r["val/zsl_acc"]) for r in rows(resumed) if r.get("val/zsl_acc")
    }
    assert sorted(curve) == [0, 1] and curve[0] > curve[1]
    assert metrics["val/zsl_acc"] == pytest.approx(curve[0], abs=1e-7)  # epoch 0 is selected
    assert [p.name for p in (resumed / "checkpoints").glob("epoch_*.ckpt")] == ["epoch_000.ckpt"]
    assert snapshot(first_half) == before  # the earlier run's files are left alone


# --------------------------------------------------------------------------- resume_sweep
SWEEP_JOB = [*QUIET, "trainer.max_epochs=3", "callbacks.model_checkpoint.save_top_k=-1"]


def interrupted_sweep_job(tmp_path: Path) -> tuple[Path, Path, dict[int, dict[str, str]]]:
    """A finished 3-epoch sweep job turned into one killed after its epoch-1 checkpoint."""
    sweep = tmp_path / "sweep"
    job = sweep / "0"
    train(compose_config(SWEEP_JOB, job))
    history = train_rows(job)
    for name in ("metrics.json", "per_class.csv", "confusion.png"):
        (job / name).unlink()
    (job / "checkpoints" / "epoch_002.ckpt").unlink()
    shutil.copy(job / "checkpoints" / "epoch_001.ckpt", job / "checkpoints" / "last.ckpt")
    return sweep, job, history


def test_resume_sweep_job_keeps_its_whole_history(tmp_path):
    sweep, job, before = interrupted_sweep_job(tmp_path)
    train(compose_config([*SWEEP_JOB, f"resume_sweep={sweep}"], job))
    after = train_rows(job)
    assert sorted(after) == [0, 1, 2]
    for epoch in (0, 1):  # the rows before the interruption are still there
        assert after[epoch]["train/loss"] == before[epoch]["train/loss"]
    assert len([r for r in rows(job) if r.get("test/zsl_acc")]) == 1


def test_resume_sweep_falls_back_from_a_damaged_last_ckpt(tmp_path, caplog):
    sweep, job, _ = interrupted_sweep_job(tmp_path)
    (job / "checkpoints" / "last.ckpt").write_bytes(b"\x00" * 10)
    with caplog.at_level(logging.WARNING):
        metrics = train(compose_config([*SWEEP_JOB, f"resume_sweep={sweep}"], job))
    assert "test/zsl_acc" in metrics and (job / "metrics.json").is_file()
    assert "last.ckpt is damaged" in caplog.text and "epoch_001.ckpt" in caplog.text
    assert sorted(train_rows(job)) == [0, 1, 2]


def test_resume_sweep_refuses_a_job_run_with_other_settings(tmp_path):
    sweep = tmp_path / "sweep"
    job = sweep / "0"
    train(compose_config([*QUIET, "trainer.max_epochs=1"], job))
    before = snapshot(job)
    cfg = compose_config(
        [*QUIET, "trainer.max_epochs=1", "miner=hardest", f"resume_sweep={sweep}"], job
    )
    with pytest.raises(RunFolderError, match=r"job .*/0 ran with other settings.*miner\._target_"):
        train(cfg)
    assert snapshot(job) == before


def test_resume_sweep_into_a_missing_folder_is_an_error(tmp_path):
    missing = tmp_path / "no_such_sweep"
    cfg = compose_config([*QUIET, f"resume_sweep={missing}"], missing / "0")
    with pytest.raises(RunFolderError, match=r"resume_sweep=.*no_such_sweep: no such folder"):
        train(cfg)
    assert not missing.exists()


# --------------------------------------------------------------------------- checkpoints
class Killed(BaseException):
    """The process was killed here."""


def test_a_kill_during_a_checkpoint_save_never_damages_last_ckpt(tmp_path, monkeypatch):
    """Temp folder on another filesystem than the outputs: a rename from it is a copy."""
    real_rename, real_open = os.rename, builtins.open

    def rename(src, dst, *args, **kwargs):
        if str(dst).endswith(".ckpt"):
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(dst))
        return real_rename(src, dst, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" in str(mode) and str(file).endswith("last.ckpt"):
            handle.close()  # the target is truncated, the old checkpoint gone: then the kill
            raise Killed(file)
        return handle

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(builtins, "open", open_)
    out = tmp_path / "run"
    try:
        train(compose_config(BASE, out))
    except Killed:
        pass
    monkeypatch.undo()
    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["epoch"] in (0, 1)


def test_atomic_save_leaves_the_previous_checkpoint_when_killed(tmp_path, monkeypatch):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}}, path)

    def killed(fd):
        raise Killed

    monkeypatch.setattr(os, "fsync", killed)
    with pytest.raises(Killed):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.load(path)["state_dict"]["w"].tolist() == [1.0, 1.0, 1.0]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left


# ------------------------------------------------------------------------------ src.eval
def test_eval_uses_the_checkpoints_run_config_and_saves_its_config(tmp_path):
    run = tmp_path / "run"
    trained = train(compose_config([*QUIET, "trainer.max_epochs=1", "data.standardise=false"], run))
    ckpt = run / "checkpoints" / "last.ckpt"
    evaluated = evaluate(
        compose_config([f"ckpt_path={ckpt}"], tmp_path / "eval", config_name="eval")
    )
    for key in ("test/zsl_acc", "test/gzsl_H"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6)
    saved = (tmp_path / "eval" / "config.yaml").read_text()
    assert "standardise: false" in saved and f"ckpt_path: {ckpt}" in saved
