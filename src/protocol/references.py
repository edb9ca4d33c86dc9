"""Stage 1 of the protocol: the references that train nothing, each with its own search.

Nearest signature, ESZSL, SAE and the untrained metric are each scored on the validation folds
under every preprocessing option (standardise, L2 of features, L2 of signatures: the options the
strategies search), and the option with the best mean validation score (the same folds and the
same ``protocol.selection_metric`` as the strategies; ties keep the configured preprocessing,
tried first) is tested once, with γ the folds' mean ``val/gamma`` there. The closed-form models'
own hyper-parameters (ESZSL: γ, λ; SAE: the test direction, λ) are chosen the same way, by the
best mean validation ZSL over the protocol's folds (:func:`grid_choice`), per preprocessing.
ALE, DeViSE and SJE are trained, so they are searched and refitted like the strategies
(:mod:`src.protocol`). Each reference is saved in ``references/<name>.json`` with its model
(``.ckpt``) and test distances (``.npz``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from omegaconf import OmegaConf

from src.core.env import config_dir
from src.protocol.contract import ProtocolRun
from src.protocol.settings import ProtocolSettings

CONF = config_dir()  # the checkout's conf/, or the copy installed with the package
#: references evaluated here (the trained ones are searched like the strategies)
UNTRAINED = ("nearest_signature", "eszsl", "sae", "untrained")
#: references trained with the pool (``miner=all``: every other seen class a negative)
TRAINED_REFERENCES = ("ale", "devise", "sje")


def searched_rows(settings: ProtocolSettings, metric_cfg: Any) -> dict[str, tuple[str, Any]]:
    """The protocol's searched rows, name → (strategy, model config): the strategies (with the
    metric), the trained references (``miner=all``) and, per ``protocol.objectives`` other than
    the metric, ``<objective>-<strategy>`` rows."""
    specs = {s: (s, metric_cfg) for s in settings.strategies}
    for ref in settings.references:
        if ref in TRAINED_REFERENCES:
            specs[ref] = ("all", OmegaConf.load(CONF / "model" / f"{ref}.yaml"))
    for objective in settings.objectives:
        if objective != "metric":
            model = OmegaConf.load(CONF / "model" / f"{objective}.yaml")
            specs.update({f"{objective}-{s}": (s, model) for s in settings.strategies})
    return specs


def preprocessing_options(configured: tuple[bool, bool, bool]) -> list[dict[str, bool]]:
    """Every (standardise, L2 features, L2 signatures) the search tries, the configured first."""
    from src.protocol.search import PREPROCESSING

    options = [
        {"standardise": s, "l2_features": f, "l2_signatures": sig}
        for s, f in PREPROCESSING.values()
        for sig in (True, False)
    ]
    first = dict(zip(("standardise", "l2_features", "l2_signatures"), configured, strict=True))
    return [first, *[o for o in options if o != first]]


def evaluate_references(protocol: ProtocolRun, only: list[str] | None = None) -> dict[str, dict]:
    """Each untrained reference (``only``: these) searched over the preprocessing on the
    validation folds, then tested once; saved per reference in ``references/<name>.json``."""
    from src.protocol.training import final_metrics

    names = [n for n in protocol.settings.references if n in UNTRAINED and (not only or n in only)]
    protocol.next_stage(f"references: {', '.join(names) or 'none'} (preprocessing on validation)")
    if (
        protocol.test_dm.feature_dim != protocol.test_dm.signature_dim
        and "nearest_signature" in names
    ):
        names.remove("nearest_signature")  # cosine needs d = k
    seed, metric, results = int(protocol.cfg.seed), protocol.settings.selection_metric, {}
    trainer, miner = protocol.cfg.trainer, protocol.miner_cfg("random")
    pool = protocol.cfg.get("pool")
    for name in names:
        model_cfg = (
            protocol.cfg.model
            if name == "untrained"
            else OmegaConf.load(CONF / "model" / f"{name}.yaml")
        )

        def run(model_cfg=model_cfg, name=name) -> dict:
            tried = []
            for option in preprocessing_options(protocol.preprocessing):
                fixed = grid_choice(protocol, name, model_cfg, option, seed)
                cfg = OmegaConf.merge(model_cfg, fixed)
                val = [
                    final_metrics(
                        protocol.data.get("val", f, seed, option),
                        cfg,
                        miner,
                        trainer,
                        0,
                        seed,
                        pool_cfg=pool,
                    )
                    for f in protocol.folds
                ]
                score = float(np.mean([v[metric] for v in val]))
                tried.append({"data": option, "model": fixed, "val": val, "val_score": score})
            best = max(range(len(tried)), key=lambda i: (tried[i]["val_score"], -i))
            pick = tried[best]
            gamma = float(np.mean([v.get("val/gamma", 0.0) for v in pick["val"]]))
            test_dm = protocol.data.get("test", protocol.folds[0], seed, pick["data"])
            keep = protocol.workspace.reference(name).with_suffix("")
            cfg = OmegaConf.merge(model_cfg, pick["model"])
            test = final_metrics(test_dm, cfg, miner, trainer, 0, seed, gamma, keep, pool)
            grid = [{k: t[k] for k in ("data", "model", "val_score")} for t in tried]
            return {"val": pick["val"], "gamma": gamma, "val_score": pick["val_score"],
                    "data": pick["data"], "model": pick["model"], "searched": grid,
                    "test": test}  # fmt: skip

        results[name] = protocol.workspace.saved(protocol.workspace.reference(name), run)
        chosen = {**results[name]["data"], **results[name].get("model", {})}
        protocol.progress(
            f"{name}: val {results[name]['val_score']:.4f} with "
            + ", ".join(f"{k}={v}" for k, v in chosen.items())
        )
    return results


def reference_rows(refs: dict[str, dict]) -> list[dict]:
    """``protocol.csv`` rows of the references evaluated here (one run each)."""
    from src.protocol.report.results import summarise

    return [
        summarise(
            name,
            "untrained" if name == "untrained" else "reference",
            [r["test"]],
            r["val_score"],
            {
                **{f"data.{k}": v for k, v in r.get("data", {}).items()},
                **{f"model.{k}": v for k, v in r.get("model", {}).items()},
                "gamma": r["gamma"],
            },
        )
        for name, r in refs.items()
    ]


#: closed-form references whose own hyper-parameter grid is chosen on the protocol's folds:
#: name → (module with ``validation_grid(split, signatures, rows, columns)``, rows, columns)
GRIDS = {"eszsl": ("src.models.eszsl", "gammas", "lambdas"),
         "sae": ("src.models.sae", "directions", "lambdas")}  # fmt: skip


def grid_choice(protocol: ProtocolRun, name: str, model_cfg: Any, option: dict, seed: int) -> dict:
    """The model's own hyper-parameters (ESZSL: γ, λ; SAE: direction, λ) with the best mean
    validation ZSL over the protocol's folds under one preprocessing ``option``, as one-value
    lists (``{"gammas": [γ], "lambdas": [λ]}``); ``{}`` for a model without a grid."""
    import importlib

    import torch

    if name not in GRIDS:
        return {}
    module, rows, columns = GRIDS[name]
    validation_grid = importlib.import_module(module).validation_grid
    grids = []
    for fold in protocol.folds:
        dm = protocol.data.get("val", fold, seed, option)
        grids.append(validation_grid(dm.make_split("val"), dm.signatures,
                                     list(model_cfg[rows]), list(model_cfg[columns])))  # fmt: skip
    mean = torch.stack(grids).mean(dim=0)
    i, j = divmod(int(mean.argmax()), mean.shape[1])  # the first maximum
    return {rows: [model_cfg[rows][i]], columns: [model_cfg[columns][j]]}
