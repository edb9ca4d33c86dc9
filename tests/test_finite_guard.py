"""Guarded training: a diverging run stops with one clear message, before any NaN update."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra_utils import QUIET, compose_config

from src.callbacks import DivergedLossError, FiniteLossGuard, NonFiniteLossError
from src.train import train


def test_a_diverging_run_stops_naming_epoch_step_and_causes(tmp_path):
    out = tmp_path / "run"
    cfg = compose_config([*QUIET, "+experiment=hard_neg", "model.lr=1e20"], out)
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, global step \d+.*model\.lr=1e\+20"):
        train(cfg)
    failure = (out / "failure.txt").read_text()
    assert "NonFiniteLossError" in failure and "learning rate too high" in failure
    assert not (out / "metrics.json").exists()


def test_the_guard_names_the_last_good_checkpoint_and_passes_finite_losses(tmp_path):
    (tmp_path / "last.ckpt").write_bytes(b"")
    trainer = SimpleNamespace(
        current_epoch=3,
        global_step=120,
        checkpoint_callback=SimpleNamespace(dirpath=str(tmp_path)),
    )
    module = SimpleNamespace(hparams={"lr": 0.5, "beta": 1.0})
    guard = FiniteLossGuard()
    guard.on_before_backward(trainer, module, torch.tensor(1.5))  # finite: nothing happens
    for bad in (float("nan"), float("inf")):
        with pytest.raises(NonFiniteLossError) as error:
            guard.on_before_backward(trainer, module, torch.tensor(bad))
        message = str(error.value)
        assert "epoch 3, global step 120" in message
        assert str(tmp_path / "last.ckpt") in message
        assert "model.lr=0.5" in message


def test_a_finite_divergence_stops_naming_model_lr(tmp_path):
    """model.lr=1e3 drives the loss to ~1e20 and back, finite: the growth check stops it."""
    out = tmp_path / "run"
    cfg = compose_config([*QUIET, "model.lr=1e3", "trainer.max_epochs=3"], out)
    with pytest.raises(DivergedLossError, match=r"training diverged.*Lower model\.lr \(now 1000"):
        train(cfg)
    assert "DivergedLossError" in (out / "failure.txt").read_text()
    assert not (out / "metrics.json").exists()


def test_the_growth_check_counts_from_the_first_step_and_rejects_a_bad_bound():
    trainer = SimpleNamespace(current_epoch=0, global_step=5, checkpoint_callback=None)
    module = SimpleNamespace(hparams={"lr": 0.5, "beta": 1.0})
    guard = FiniteLossGuard(max_loss_growth=100.0)
    for value in (2.0, 150.0, 199.0):  # within 100 × the first value
        guard.on_before_backward(trainer, module, torch.tensor(value))
    with pytest.raises(DivergedLossError, match="100 times its first value"):
        guard.on_before_backward(trainer, module, torch.tensor(200.5))
    with pytest.raises(ValueError, match=r"max_loss_growth=1.0 is invalid"):
        FiniteLossGuard(max_loss_growth=1.0)
