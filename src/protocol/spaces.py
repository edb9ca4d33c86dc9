"""The search spaces of the protocol's studies (:func:`space`, :func:`default_params`).

Every pool-trained model samples the same parameters first (preprocessing, L2 of the
signatures, initialisation, learning rate), then its own, declared by its system (the scorer:
the metric's μ and rank, the compatibility's μ) and its loss (P2's pair loss: λ; a ranking
loss: the margin Δ), then the pool's K (and T) when its strategy has them (``miner=all``, the
published methods, has neither). The order of the draws fixes what TPE samples.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

#: data preprocessing choices: (standardise, l2_features)
PREPROCESSING = {"l2": (False, True), "standardise": (True, False), "standardise_l2": (True, True)}


def space(trial: Any, ctx: Any, miner_cfg: DictConfig) -> dict[str, Any]:
    """Sample one setting: ``{"data.x": …, "model.y": …, "miner.z": …}``: the shared
    parameters, then the model's scorer and loss (its system's
    :meth:`~src.models.pool_trained.PoolTrainedSystem.search_space`), then the pool's."""
    system, loss = model_parts(ctx.model_cfg)
    values = _shared_values(trial, ctx)
    values.update(system.search_space(trial, ctx.signature_dim, loss))
    return {**values, **_miner_values(trial, ctx, miner_cfg)}


def default_params(ctx: Any, miner_cfg: DictConfig, preprocessing: tuple) -> dict:
    """The configured defaults as trial parameters (enqueued as every study's first trial)."""
    system, loss = model_parts(ctx.model_cfg)
    model = ctx.model_cfg
    init = model.init if model.init != "auto" else _inits(ctx)[0]
    init = init if init in _inits(ctx) else "ridge"  # e.g. random: not searched
    params = _shared_defaults(ctx, preprocessing, init, system.AUTO_LR)
    params.update(system.default_params(model, ctx.signature_dim, loss))
    return {**params, **_miner_defaults(ctx, miner_cfg)}


def model_parts(model_cfg: DictConfig) -> tuple[Any, Any]:
    """The system class (the scorer; the metric's when the config names none) and the loss
    class (the system's default when the config names none) of a pool-trained model."""
    import hydra

    from src.models.losses import loss_class
    from src.models.system import MetricZSLSystem

    target = model_cfg.get("_target_")
    system = hydra.utils.get_class(target) if target else MetricZSLSystem
    spec = model_cfg.get("loss")
    return system, (loss_class(spec) if spec is not None else system.DEFAULT_LOSS)


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
