"""The validation search of one mining strategy: an Optuna (TPE) study, resumable from SQLite.

A trial samples the settings below, trains on the ``train`` classes of every validation fold for
``max_epochs`` epochs, and scores the mean validation curve over the folds: its best epoch is the
trial's epoch count and the curve's value there its score (the selection rules are in
:mod:`src.tuning.selection`). Nothing here reads a test image (the validation folds are drawn
from ``trainval`` only). The first trial of every study is the configured defaults, so a search
can only improve on them on validation.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf

from src.tuning.runs import DataModules, train_curve
from src.tuning.selection import choose_epoch

# The selection rules src.protocol imports from here.
from src.tuning.selection import choose_trial as choose_trial
from src.tuning.selection import selection_window as selection_window

#: data preprocessing choices: (standardise, l2_features)
PREPROCESSING = {"l2": (False, True), "standardise": (True, False), "standardise_l2": (True, True)}


@dataclass
class SearchContext:
    """What a trial needs: configs, data, folds and the budget."""

    data: DataModules
    model_cfg: DictConfig
    trainer_cfg: DictConfig
    folds: list[int]
    max_epochs: int
    metric: str
    seed: int
    feature_dim: int
    signature_dim: int
    min_train_classes: int
    attribute_signatures: bool
    smoothing: int = 1  # window of the search's objective (auto chooses the final one later)


def space(trial: optuna.Trial, ctx: SearchContext, miner_cfg: DictConfig) -> dict[str, Any]:
    """Sample one setting: ``{"data.x": …, "model.y": …, "miner.z": …}``."""
    k = ctx.signature_dim
    inits = (
        ["identity", "ridge"] if ctx.feature_dim == k and ctx.attribute_signatures else ["ridge"]
    )
    ranks = sorted({max(1, k // 4), max(1, k // 2), k})
    max_k = max(1, min(64, ctx.min_train_classes - 1))
    preprocessing = trial.suggest_categorical("preprocessing", list(PREPROCESSING))
    standardise, l2_features = PREPROCESSING[preprocessing]
    values: dict[str, Any] = {
        "data.standardise": standardise,
        "data.l2_features": l2_features,
        "data.l2_signatures": trial.suggest_categorical("l2_signatures", [True, False]),
        "model.init": trial.suggest_categorical("init", inits),
        "model.lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
        "model.attribute_weight": trial.suggest_float("attribute_weight", 1e-3, 1.0, log=True),
        "model.weight_decay": trial.suggest_float("weight_decay", 1e-6, 1.0, log=True),
        "model.rank": trial.suggest_categorical("rank", ranks),
        "miner.num_negatives": trial.suggest_int("num_negatives", 1, max_k, log=True),
    }
    if "temperature" in miner_cfg:
        values["miner.temperature"] = trial.suggest_float("temperature", 0.05, 20.0, log=True)
    return values


def default_params(ctx: SearchContext, miner_cfg: DictConfig, preprocessing: tuple) -> dict:
    """The configured defaults as trial parameters (enqueued as every study's first trial)."""
    from src.models.system import AUTO_LR

    standardise, l2_features, l2_signatures = preprocessing
    name = next((n for n, v in PREPROCESSING.items() if v == (standardise, l2_features)), "l2")
    in_space = ctx.feature_dim == ctx.signature_dim and ctx.attribute_signatures
    init = ctx.model_cfg.init
    if init == "auto":
        init = "identity" if in_space else "ridge"
    lr = ctx.model_cfg.lr if ctx.model_cfg.lr is not None else AUTO_LR[init]
    params = {
        "preprocessing": name,
        "l2_signatures": bool(l2_signatures),
        "init": init,
        "lr": float(lr),
        "attribute_weight": float(ctx.model_cfg.attribute_weight),
        "weight_decay": float(min(max(ctx.model_cfg.weight_decay, 1e-6), 1.0)),
        "rank": ctx.signature_dim if ctx.model_cfg.rank is None else int(ctx.model_cfg.rank),
        "num_negatives": int(min(miner_cfg.num_negatives, max(1, ctx.min_train_classes - 1))),
    }
    if "temperature" in miner_cfg:
        params["temperature"] = float(miner_cfg.temperature)
    return params


def apply(values: dict[str, Any], model_cfg: DictConfig, miner_cfg: DictConfig):
    """(data overrides, model config, miner config) of a setting."""
    model_cfg, miner_cfg = model_cfg.copy(), miner_cfg.copy()
    data = {}
    for key, value in values.items():
        group, name = key.split(".", 1)
        if group == "data":
            data[name] = value
        else:
            OmegaConf.update(model_cfg if group == "model" else miner_cfg, name, value)
    return data, model_cfg, miner_cfg


def score_setting(ctx: SearchContext, values: dict[str, Any], miner_cfg: DictConfig) -> dict:
    """Validation curves of every fold → chosen epoch, its score, γ and the curves themselves."""
    data, model_cfg, miner_cfg = apply(values, ctx.model_cfg, miner_cfg)
    curves, gammas = [], []
    for fold in ctx.folds:
        datamodule = ctx.data.get("val", fold, ctx.seed, data)
        epochs = train_curve(
            datamodule, model_cfg, miner_cfg, ctx.trainer_cfg, ctx.max_epochs, ctx.seed
        )
        curves.append([e.get(ctx.metric, math.nan) for e in epochs])
        gammas.append([e.get("val/gamma", 0.0) for e in epochs])
    fold_curves = np.asarray(curves, dtype=float)
    best, score = choose_epoch(fold_curves, ctx.smoothing)
    return {
        "score": score,
        "best_epoch": best + 1,
        "gamma": float(np.mean([g[best] for g in gammas])),
        "fold_scores": [float(c[best]) for c in curves],
        "curve": [float(v) for v in np.nanmean(fold_curves, axis=0)],
        "fold_curves": fold_curves.tolist(),
        "fold_gammas": gammas,
    }


def run_study(
    name: str,
    storage: Path,
    ctx: SearchContext,
    miner_cfg: DictConfig,
    n_trials: int,
    defaults: dict,
    progress: Callable[[str], None],
) -> optuna.Study:
    """Run (or continue) the study of one strategy until it holds ``n_trials`` finished trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # enqueue_trial is "experimental" in optuna 2.x, and its int distribution warns about `step`.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message=".*`step` argument is deprecated.*")
    study = optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{storage}",
        direction="maximize",
        load_if_exists=True,
        sampler=optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=min(8, n_trials)),
    )
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not study.trials:
        study.enqueue_trial(defaults)

    counter = [len(done)]  # the trials shown as i/n: finished ones, not Optuna's numbers

    def objective(trial: optuna.Trial) -> float:
        counter[0] += 1
        start = time.perf_counter()
        values = space(trial, ctx, miner_cfg)
        try:
            result = score_setting(ctx, values, miner_cfg)
        except (FloatingPointError, ValueError) as error:  # e.g. diverged at a too-high lr
            trial.set_user_attr("error", str(error).splitlines()[0])
            progress(f"trial {counter[0]}/{n_trials} failed: {error}")
            return 0.0
        for key, value in result.items():
            trial.set_user_attr(key, value)
        trial.set_user_attr("values", dict(values))
        progress(
            f"trial {counter[0]}/{n_trials} · {ctx.metric} {result['score']:.4f} at "
            f"epoch {result['best_epoch']} · {time.perf_counter() - start:.1f} s"
        )
        return result["score"]

    remaining = n_trials - len(done)
    if remaining > 0:
        if done:
            progress(f"continuing: {len(done)}/{n_trials} trials already done")
        study.optimize(objective, n_trials=remaining)
    return study
