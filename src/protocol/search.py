"""The validation search of one mining strategy: an Optuna (TPE) study, resumable from its storage.

A trial samples the settings below, trains on the ``train`` classes of every validation fold for
``max_epochs`` epochs, and scores the mean validation curve over the folds: its best epoch is the
trial's epoch count and the curve's value there its score (the selection rules are in
:mod:`src.protocol.selection`). Nothing here reads a test image (the validation folds are drawn
from ``trainval`` only). The first trial of every study is the configured defaults, so a search
can only improve on them on validation.

A study continues exactly where it stopped, even after ``kill -9`` (:mod:`src.protocol.study`:
each trial's sampler, opening a study, its finished trials). A diverged setting finishes PRUNED
(TPE ranks it below every scored trial), never COMPLETE with a made-up score.

Where a study lives (:mod:`src.protocol.storage`): by default one SQLite file per study in
the run folder; ``protocol.storage`` names a shared one instead (an RDB URL, or a JournalStorage
file for a network disk), whose studies are then named after the run folder as well.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.trial import TrialState

from src.protocol.inputs import Inputs
from src.protocol.outcomes import SearchResult
from src.protocol.selection import choose_epoch
from src.protocol.settings import ProtocolSettings
from src.protocol.spaces import default_params, space
from src.protocol.study import finished_records, open_study, trial_sampler
from src.protocol.training import DataModules, train_curve
from src.protocol.workspace import Workspace

log = logging.getLogger(__name__)


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
    pruner: str = "none"  # protocol.pruner: none | median (stops hopeless trials early)
    settings: dict | None = None  # the protocol's, kept with each study (state.protocol_settings)
    pool_cfg: DictConfig | None = None  # the pool group's config (None: NegativePool's defaults)


def search_context(settings: ProtocolSettings, inputs: Inputs, name: str | None = None):
    """The search context of row ``name`` (its model config; default: the metric's)."""
    dm = inputs.data.get("val", inputs.folds[0], inputs.seed, {})
    train_classes = min(
        len(inputs.data.get("val", f, inputs.seed, {}).seen_classes) for f in inputs.folds
    )
    return SearchContext(
        data=inputs.data,
        model_cfg=inputs.specs[name][1] if name else inputs.model,
        trainer_cfg=inputs.trainer,
        folds=inputs.folds,
        max_epochs=settings.max_epochs,
        metric=settings.selection_metric,
        seed=inputs.seed,
        feature_dim=dm.feature_dim,
        signature_dim=dm.signature_dim,
        min_train_classes=train_classes,
        attribute_signatures=dm.signature_kind != "text",
        smoothing=3 if settings.smoothing == "auto" else int(settings.smoothing),
        pruner=settings.pruner,
        settings=inputs.study_settings,
        pool_cfg=inputs.pool,
    )


def search_row(
    settings: ProtocolSettings, workspace: Workspace, inputs: Inputs, name: str
) -> SearchResult:
    """Run (or continue) searched row ``name``'s study; its finished trials, in order."""
    from src.protocol.storage import storage_for

    workspace.progress.stage(f"search `{name}` on validation folds {inputs.folds}")
    ctx, miner = search_context(settings, inputs, name), inputs.miner_cfg(inputs.specs[name][0])
    (workspace.folder / "search").mkdir(parents=True, exist_ok=True)
    storage, study_name = storage_for(settings.storage, workspace.folder, name)
    defaults = default_params(ctx, miner, inputs.preprocessing)
    study = run_study(
        study_name, storage, ctx, miner, settings.n_trials, defaults, workspace.progress
    )
    pruned = sum(
        "pruned" in t.user_attrs for t in study.get_trials(deepcopy=False)
        if t.state.name == "PRUNED"
    )  # fmt: skip
    finished = finished_records(study)
    if not finished:
        raise RuntimeError(f"search `{name}`: no trial finished; see protocol.log.")
    return SearchResult(trials=finished, pruned=pruned)


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


def score_setting(
    ctx: SearchContext, values: dict[str, Any], miner_cfg: DictConfig, trial: Any = None
) -> dict:
    """Validation curves of every fold → chosen epoch, its score, γ and the curves themselves.

    With a ``trial`` (a search under ``protocol.pruner``), every epoch's running estimate (the
    mean of the folds so far at that epoch, :class:`~src.protocol.training.PruningReport`) is
    reported to it (fold k at steps ``k × max_epochs + epoch``) and ``optuna.TrialPruned``
    stops the setting as soon as the pruner says so."""
    from src.protocol.training import PruningReport

    data, model_cfg, miner_cfg = apply(values, ctx.model_cfg, miner_cfg)
    curves, gammas = [], []
    for k, fold in enumerate(ctx.folds):
        datamodule = ctx.data.get("val", fold, ctx.seed, data)
        last = len(ctx.folds) * ctx.max_epochs - 1
        report = (
            ()
            if trial is None
            else (PruningReport(trial, ctx.metric, k * ctx.max_epochs, last, earlier=curves),)
        )
        epochs = train_curve(
            datamodule,
            model_cfg,
            miner_cfg,
            ctx.trainer_cfg,
            ctx.max_epochs,
            ctx.seed,
            report,
            pool_cfg=ctx.pool_cfg,
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
    storage: Path | str,
    ctx: SearchContext,
    miner_cfg: DictConfig,
    n_trials: int,
    defaults: dict,
    progress: Callable[[str], None],
) -> optuna.Study:
    """Run (or continue) the study of one strategy until it holds ``n_trials`` finished trials.

    Trial i (0-based, counting finished trials) draws its setting with :func:`trial_sampler`
    ``(ctx.seed, i)`` from the trials 0…i−1, so a study continued after a stop at any moment (a
    kill included) holds the same finished trials, in the same order, as an uninterrupted one.
    A diverged setting (``FloatingPointError``/``ValueError``) finishes PRUNED with its
    ``error``: it counts as a finished trial (deterministic, so a continued study sees the same
    history), and TPE, which ranks pruned trials below the scored ones, learns to avoid it.
    """
    study, done, stopped = open_study(
        name, storage, ctx.seed, n_trials, defaults, ctx.pruner, ctx.settings
    )
    if stopped and done < n_trials:
        progress(f"continuing: {done}/{n_trials} trials done; trial {done + 1} runs again")
    elif done and done < n_trials:
        progress(f"continuing: {done}/{n_trials} trials already done")
    while done < n_trials:
        study.sampler = trial_sampler(ctx.seed, done, n_trials)
        trial = study.ask()
        try:
            score = _run_trial(trial, ctx, miner_cfg, f"trial {done + 1}/{n_trials}", progress)
        except BaseException:  # stopped (Ctrl-C) or a bug: the trial did not finish
            study.tell(trial, state=TrialState.FAIL)
            raise
        if score is None:  # diverged, or stopped by the pruner
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, score)
        done += 1
    return study


def _run_trial(
    trial: optuna.Trial,
    ctx: SearchContext,
    miner_cfg: DictConfig,
    label: str,
    progress: Callable[[str], None],
) -> float | None:
    """Score the trial's setting; its record goes to ``trial.user_attrs``; the score (``None``:
    the setting diverged, its ``error`` recorded)."""
    start = time.perf_counter()
    values = space(trial, ctx, miner_cfg)
    try:
        pruning = {"trial": trial} if ctx.pruner != "none" else {}
        result = score_setting(ctx, values, miner_cfg, **pruning)
    except optuna.TrialPruned as stop:  # hopeless: below the median at an epoch
        trial.set_user_attr("pruned", str(stop))
        progress(f"{label} pruned: {stop} · {time.perf_counter() - start:.1f} s")
        return None
    except (FloatingPointError, ValueError) as error:  # e.g. diverged at a too-high lr
        trial.set_user_attr("error", str(error).splitlines()[0])
        progress(f"{label} diverged (pruned): {str(error).splitlines()[0]}")
        return None
    for key, value in result.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("values", dict(values))
    progress(
        f"{label} · {ctx.metric} {result['score']:.4f} at "
        f"epoch {result['best_epoch']} · {time.perf_counter() - start:.1f} s"
    )
    return result["score"]
