"""The search space of the bilinear compatibility models (ALE, DeViSE, SJE) in the protocol.

The metric's space is :func:`src.tuning.search.space`; a compatibility model has no rank, no
attribute term and a margin instead: preprocessing, L2 of the signatures, initialisation,
learning rate, weight decay (towards the initialisation) and margin Δ, plus the pool's K (and
T) when its strategy has them (``miner=all``, the published methods, has neither).
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig


def is_compatibility(model_cfg: DictConfig) -> bool:
    return "compatibility" in str(model_cfg.get("_target_", ""))


def _inits(ctx: Any) -> list[str]:
    in_space = ctx.feature_dim == ctx.signature_dim and ctx.attribute_signatures
    return ["identity", "ridge"] if in_space else ["ridge"]


def compatibility_space(trial: Any, ctx: Any, miner_cfg: DictConfig) -> dict[str, Any]:
    """Sample one setting of a compatibility model: ``{"data.x": …, "model.y": …, …}``."""
    from src.tuning.search import PREPROCESSING

    preprocessing = trial.suggest_categorical("preprocessing", list(PREPROCESSING))
    standardise, l2_features = PREPROCESSING[preprocessing]
    values: dict[str, Any] = {
        "data.standardise": standardise,
        "data.l2_features": l2_features,
        "data.l2_signatures": trial.suggest_categorical("l2_signatures", [True, False]),
        "model.init": trial.suggest_categorical("init", _inits(ctx)),
        "model.lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
        "model.weight_decay": trial.suggest_float("weight_decay", 1e-6, 1.0, log=True),
        "model.margin": trial.suggest_float("margin", 0.1, 10.0, log=True),
    }
    if miner_cfg.get("num_negatives") is not None:
        max_k = max(1, min(64, ctx.min_train_classes - 1))
        values["miner.num_negatives"] = trial.suggest_int("num_negatives", 1, max_k, log=True)
    if "temperature" in miner_cfg:
        values["miner.temperature"] = trial.suggest_float("temperature", 0.05, 20.0, log=True)
    return values


def compatibility_defaults(ctx: Any, miner_cfg: DictConfig, preprocessing: tuple) -> dict:
    """The configured defaults of a compatibility model as trial parameters."""
    from src.models.compatibility_system import COMPATIBILITY_AUTO_LR
    from src.tuning.search import PREPROCESSING

    standardise, l2_features, l2_signatures = preprocessing
    name = next((n for n, v in PREPROCESSING.items() if v == (standardise, l2_features)), "l2")
    model = ctx.model_cfg
    init = model.init if model.init != "auto" else _inits(ctx)[0]
    init = init if init in _inits(ctx) else "ridge"
    lr = model.lr if model.lr is not None else COMPATIBILITY_AUTO_LR[init]
    params = {
        "preprocessing": name,
        "l2_signatures": bool(l2_signatures),
        "init": init,
        "lr": float(lr),
        "weight_decay": float(min(max(model.weight_decay, 1e-6), 1.0)),
        "margin": float(min(max(model.margin, 0.1), 10.0)),
    }
    if miner_cfg.get("num_negatives") is not None:
        params["num_negatives"] = int(
            min(miner_cfg.num_negatives, max(1, ctx.min_train_classes - 1))
        )
    if "temperature" in miner_cfg:
        params["temperature"] = float(miner_cfg.temperature)
    return params
