"""The search spaces of the protocol's studies: the metric's (:func:`space`) and the bilinear
compatibility models' (ALE, DeViSE, SJE; :func:`compatibility_space`).

A compatibility model has no rank, no attribute term and a margin instead: preprocessing,
L2 of the signatures, initialisation, learning rate, weight decay (towards the initialisation)
and margin Δ, plus the pool's K (and T) when its strategy has them (``miner=all``, the
published methods, has neither).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

#: data preprocessing choices: (standardise, l2_features)
PREPROCESSING = {"l2": (False, True), "standardise": (True, False), "standardise_l2": (True, True)}


def space(trial: Any, ctx: Any, miner_cfg: DictConfig) -> dict[str, Any]:
    """Sample one setting: ``{"data.x": …, "model.y": …, "miner.z": …}`` (a compatibility
    model's: :func:`compatibility_space`)."""
    if is_compatibility(ctx.model_cfg):
        return compatibility_space(trial, ctx, miner_cfg)
    k = ctx.signature_dim
    ranks = sorted({max(1, k // 4), max(1, k // 2), k})
    values = _shared_values(trial, ctx)
    values["model.attribute_weight"] = trial.suggest_float("attribute_weight", 1e-3, 1.0, log=True)
    values["model.weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1.0, log=True)
    values["model.rank"] = trial.suggest_categorical("rank", ranks)
    return {**values, **_miner_values(trial, ctx, miner_cfg)}


def default_params(ctx: Any, miner_cfg: DictConfig, preprocessing: tuple) -> dict:
    """The configured defaults as trial parameters (enqueued as every study's first trial)."""
    if is_compatibility(ctx.model_cfg):
        return compatibility_defaults(ctx, miner_cfg, preprocessing)
    from src.models.system import AUTO_LR

    init = ctx.model_cfg.init if ctx.model_cfg.init != "auto" else _inits(ctx)[0]
    params = _shared_defaults(ctx, preprocessing, init, AUTO_LR)
    params["attribute_weight"] = float(ctx.model_cfg.attribute_weight)
    params["weight_decay"] = float(min(max(ctx.model_cfg.weight_decay, 1e-6), 1.0))
    rank = ctx.model_cfg.rank
    params["rank"] = ctx.signature_dim if rank is None else int(rank)
    return {**params, **_miner_defaults(ctx, miner_cfg)}


def is_compatibility(model_cfg: DictConfig) -> bool:
    return "compatibility" in str(model_cfg.get("_target_", ""))


def _inits(ctx: Any) -> list[str]:
    in_space = ctx.feature_dim == ctx.signature_dim and ctx.attribute_signatures
    return ["identity", "ridge"] if in_space else ["ridge"]


def _shared_values(trial: Any, ctx: Any) -> dict[str, Any]:
    """What every model samples first, in this order: preprocessing, L2 of the signatures,
    initialisation, learning rate (the order of the draws fixes what TPE samples)."""
    standardise, l2_features = PREPROCESSING[
        trial.suggest_categorical("preprocessing", list(PREPROCESSING))
    ]
    return {
        "data.standardise": standardise,
        "data.l2_features": l2_features,
        "data.l2_signatures": trial.suggest_categorical("l2_signatures", [True, False]),
        "model.init": trial.suggest_categorical("init", _inits(ctx)),
        "model.lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
    }


def _miner_values(trial: Any, ctx: Any, miner_cfg: DictConfig) -> dict[str, Any]:
    """K (not for ``miner=all``) and T, where the strategy has them; sampled last."""
    values: dict[str, Any] = {}
    if miner_cfg.get("num_negatives") is not None:
        max_k = max(1, min(64, ctx.min_train_classes - 1))
        values["miner.num_negatives"] = trial.suggest_int("num_negatives", 1, max_k, log=True)
    if "temperature" in miner_cfg:
        values["miner.temperature"] = trial.suggest_float("temperature", 0.05, 20.0, log=True)
    return values


def _shared_defaults(ctx: Any, preprocessing: tuple, init: str, auto_lr: dict) -> dict:
    standardise, l2_features, l2_signatures = preprocessing
    name = next((n for n, v in PREPROCESSING.items() if v == (standardise, l2_features)), "l2")
    lr = ctx.model_cfg.lr if ctx.model_cfg.lr is not None else auto_lr[init]
    return {"preprocessing": name, "l2_signatures": bool(l2_signatures), "init": init,
            "lr": float(lr)}  # fmt: skip


def _miner_defaults(ctx: Any, miner_cfg: DictConfig) -> dict:
    params: dict[str, Any] = {}
    if miner_cfg.get("num_negatives") is not None:
        k = min(miner_cfg.num_negatives, max(1, ctx.min_train_classes - 1))
        params["num_negatives"] = int(k)
    if "temperature" in miner_cfg:
        params["temperature"] = float(miner_cfg.temperature)
    return params


def compatibility_space(trial: Any, ctx: Any, miner_cfg: DictConfig) -> dict[str, Any]:
    """Sample one setting of a compatibility model: ``{"data.x": …, "model.y": …, …}``."""
    values = _shared_values(trial, ctx)
    values["model.weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1.0, log=True)
    values["model.margin"] = trial.suggest_float("margin", 0.1, 10.0, log=True)
    return {**values, **_miner_values(trial, ctx, miner_cfg)}


def compatibility_defaults(ctx: Any, miner_cfg: DictConfig, preprocessing: tuple) -> dict:
    """The configured defaults of a compatibility model as trial parameters."""
    from src.models.compatibility_system import COMPATIBILITY_AUTO_LR

    model = ctx.model_cfg
    init = model.init if model.init != "auto" else _inits(ctx)[0]
    init = init if init in _inits(ctx) else "ridge"
    params = _shared_defaults(ctx, preprocessing, init, COMPATIBILITY_AUTO_LR)
    params["weight_decay"] = float(min(max(model.weight_decay, 1e-6), 1.0))
    params["margin"] = float(min(max(model.margin, 0.1), 10.0))
    return {**params, **_miner_defaults(ctx, miner_cfg)}
