"""Guarded training: a diverging run stops with one clear message, before any NaN update."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from hydra_utils import QUIET, compose_config

from src.callbacks import FiniteLossGuard, NonFiniteLossError
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
