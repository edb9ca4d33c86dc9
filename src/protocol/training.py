"""One training or evaluation run of the protocol, in process, without files or loggers.

The protocol runs hundreds of short jobs (trials × folds, refits × seeds). Each is the
framework's own pieces (the configured LightningDataModule, :class:`MetricZSLSystem`, the
:class:`NegativePoolRefresh` callback and the NaN guard) in a bare Lightning ``Trainer``: no
checkpoints, no progress bar, no loggers; metrics are read from the trainer after every
validation epoch.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.callbacks import FiniteLossGuard, NegativePoolRefresh
from src.evaluation.gamma import TestGammaFromValidation
from src.metrics import per_class_rows
from src.mining.pool import NegativePool


class EpochMetrics(L.Callback):
    """Collects the ``val/`` metrics of every validation epoch during ``fit``."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        self.epochs.append({k: float(v) for k, v in metrics.items() if k.startswith("val/")})


class PruningReport(L.Callback):
    """Reports a trial's running validation estimate to Optuna after every epoch of one fold,
    at step ``offset + epoch`` (fold k of a trial starts at ``k × max_epochs``), and stops the
    trial (``optuna.TrialPruned``) when the study's pruner says so.

    The value at fold k's epoch e is the mean of folds 1…k at epoch e (``earlier``: the
    finished folds' curves): the running estimate of the mean curve that chooses the trial,
    the same quantity for every trial at a step. A fold's raw value is not: validation folds
    differ in difficulty, and Optuna's percentile pruners compare a trial's best value over
    all its steps with the others' values at this one (measured on APY: raw fold values pruned
    trials that would have been chosen; README, "Early stopping of hopeless trials")."""

    def __init__(
        self,
        trial: Any,
        metric: str,
        offset: int,
        last: int | None = None,
        earlier: list[list[float]] = (),
    ) -> None:
        """``last``: the trial's last step, never pruned (stopping there saves nothing and
        throws a whole curve away)."""
        self.trial, self.metric, self.offset, self.last = trial, metric, offset, last
        self.earlier = [list(curve) for curve in earlier]

    def value(self, epoch: int, score: float) -> float:
        """The reported value at ``epoch`` (0-based) of this fold with its ``score``."""
        return float(np.mean([curve[epoch] for curve in self.earlier] + [score]))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        import optuna

        if trainer.sanity_checking or self.metric not in trainer.callback_metrics:
            return
        epoch = trainer.current_epoch
        step = self.offset + epoch
        self.trial.report(self.value(epoch, float(trainer.callback_metrics[self.metric])), step)
        if step != self.last and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at step {step} (fold epoch {epoch + 1})")


def quiet_lightning() -> None:
    """One protocol makes hundreds of Trainers: keep their start-up lines out of the console,
    with the warnings training filters too (:func:`~src.core.env.quiet_known_warnings`), and the
    closed-form models' "only configured γ, λ" lines (the protocol chose them on validation
    and names them in its own line)."""
    from src.core.env import quiet_known_warnings

    quiet_known_warnings()
    for name in (
        "lightning.pytorch.utilities.rank_zero",
        "lightning.fabric.utilities.rank_zero",
        "lightning.pytorch.trainer.connectors.checkpoint_connector",  # `weights_only` not set
        "src.models.closed_form",  # ESZSL's, SAE's and any closed-form model's choice
        "src.models.sae",  # SAE's singular-equation note
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")


class DataModules:
    """Set-up datamodules by (split mode, fold, seed, preprocessing), so trials share them."""

    def __init__(self, data_cfg: DictConfig) -> None:
        self.data_cfg = data_cfg
        self._cache: dict[tuple, Any] = {}

    @property
    def has_folds(self) -> bool:
        """Whether ``data.val_split`` chooses among the benchmarks' three validation folds:
        xlsa17 data, and synthetic data shaped like it (``data.like``; the embedded task has one
        validation split)."""
        if "like" in self.data_cfg:
            return self.data_cfg.like is not None
        return "val_split" in self.data_cfg

    def config(
        self, split_mode: str, fold: int, seed: int, overrides: dict[str, Any]
    ) -> DictConfig:
        """The data config of one (split mode, fold, seed, preprocessing)."""
        cfg = OmegaConf.merge(self.data_cfg, {"split_mode": split_mode, "seed": seed})
        if self.has_folds:
            cfg.val_split = fold
        for name, value in overrides.items():
            cfg[name] = value
        return cfg

    def get(self, split_mode: str, fold: int, seed: int, overrides: dict[str, Any]) -> Any:
        key = (split_mode, fold, seed, tuple(sorted(overrides.items())))
        if key not in self._cache:
            cfg = self.config(split_mode, fold, seed, overrides)
            datamodule = hydra.utils.instantiate(cfg)
            datamodule.kept_config = OmegaConf.to_container(cfg, resolve=True)
            datamodule.setup("fit")
            if len(self._cache) >= 12:  # bounded: preprocessing variants × folds
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = datamodule
        return self._cache[key]


def make_trainer(trainer_cfg: DictConfig, max_epochs: int, callbacks: list) -> L.Trainer:
    """A bare Trainer on the configured accelerator: no logger, checkpoint or progress bar."""
    return L.Trainer(
        accelerator=trainer_cfg.get("accelerator", "cpu"),
        devices=1,
        max_epochs=max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
        deterministic=trainer_cfg.get("deterministic", None),
    )


def build_model(model_cfg: DictConfig, datamodule: Any, gamma: float | None = None) -> Any:
    return hydra.utils.instantiate(
        model_cfg,
        feature_dim=datamodule.feature_dim,
        signature_dim=datamodule.signature_dim,
        calibration_gamma=gamma,
    )


def make_pool(miner_cfg: DictConfig, seed: int, pool_cfg: DictConfig | None = None) -> NegativePool:
    """The pool of a protocol run, built as ``src.train`` builds it: the ``pool`` group's
    config (``conf/pool/``: refresh schedule, warm-up, memory budget; None: the class's
    defaults) with the strategy's miner (``conf/miner/<strategy>.yaml``) and the run's seed."""
    miner = hydra.utils.instantiate(miner_cfg)
    if pool_cfg is None:
        return NegativePool(miner, seed=seed)
    return hydra.utils.instantiate(pool_cfg, miner=miner, seed=seed)


def train_curve(
    datamodule: Any,
    model_cfg: DictConfig,
    miner_cfg: DictConfig,
    trainer_cfg: DictConfig,
    epochs: int,
    seed: int,
    callbacks: tuple = (),
    pool_cfg: DictConfig | None = None,
) -> list[dict[str, float]]:
    """Train in ``split_mode=val`` for ``epochs``; the ``val/`` metrics after every epoch
    (``callbacks`` run after the recorder: e.g. :class:`PruningReport`)."""
    L.seed_everything(seed, workers=True, verbose=False)
    model = build_model(model_cfg, datamodule)
    recorder = EpochMetrics()
    pool = NegativePoolRefresh(make_pool(miner_cfg, seed, pool_cfg))
    trainer = make_trainer(trainer_cfg, epochs, [pool, FiniteLossGuard(), recorder, *callbacks])
    trainer.fit(model, datamodule=datamodule)
    return recorder.epochs


def final_metrics(
    datamodule: Any,
    model_cfg: DictConfig,
    miner_cfg: DictConfig | None,
    trainer_cfg: DictConfig,
    epochs: int,
    seed: int,
    gamma: float | None = None,
    keep: Path | None = None,
    pool_cfg: DictConfig | None = None,
) -> dict[str, float]:
    """Train ``epochs`` (0: untrained; nothing for closed-form models), evaluate once.

    ``split_mode=val`` gives the ``val/`` metrics (γ chosen on the validation images unless
    ``gamma`` is given), ``split_mode=test`` the ``test/`` metrics with ``gamma`` fixed (when
    ``None``: chosen on the validation split, :class:`~src.evaluation.gamma.
    TestGammaFromValidation`). With ``keep``, the model is saved as ``<keep>.ckpt`` (a
    checkpoint ``src.eval`` evaluates as this run did: its data config, γ and dataset identity
    inside) and the evaluation's distances as ``<keep>.npz``
    (:func:`src.protocol.kept.save_scores`).
    """
    L.seed_everything(seed, workers=True, verbose=False)
    model = build_model(model_cfg, datamodule, gamma)
    if model.trainable:
        pool = NegativePoolRefresh(make_pool(miner_cfg, seed, pool_cfg))
        trainer = make_trainer(trainer_cfg, epochs, [pool, FiniteLossGuard()])
        trainer.fit(model, datamodule=datamodule)
    else:  # closed-form models fit at setup, from the datamodule
        trainer = make_trainer(trainer_cfg, epochs, [])
    if datamodule.split_mode == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.callbacks.append(TestGammaFromValidation())
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in sorted(trainer.callback_metrics.items()) if "/" in k}
    if keep is not None:
        from src.protocol.kept import save_run

        save_run(keep, trainer, model, datamodule)
    per_class = {  # ZSL top-1 of every unseen class
        row["class_name"]: row["zsl_acc"]
        for row in per_class_rows(model.last_eval.scores, datamodule.class_names)
        if row["split"] == "unseen"
    }
    return {**metrics, "per_class_zsl": per_class}
