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
from src.protocol.inputs import Inputs
from src.protocol.model_kinds import model_config, model_kinds
from src.protocol.outcomes import ReferenceResult
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Workspace

CONF = config_dir()  # the checkout's conf/, or the copy installed with the package


def preprocessing_options(configured: tuple[bool, bool, bool]) -> list[dict[str, bool]]:
    """Every (standardise, L2 features, L2 signatures) the search tries, the configured first."""
    from src.protocol.spaces import PREPROCESSING

    options = [
        {"standardise": s, "l2_features": f, "l2_signatures": sig}
        for s, f in PREPROCESSING.values()
        for sig in (True, False)
    ]
    first = dict(zip(("standardise", "l2_features", "l2_signatures"), configured, strict=True))
    return [first, *[o for o in options if o != first]]


def evaluate_references(
    settings: ProtocolSettings, workspace: Workspace, inputs: Inputs, only: list[str] | None = None
) -> dict[str, ReferenceResult]:
    """Each untrained reference (``only``: these) searched over the preprocessing on the
    validation folds, then tested once; saved per reference in ``references/<name>.json``."""
    untrained = model_kinds().untrained  # the trained ones are searched like the strategies
    names = [n for n in settings.references if n in untrained and (not only or n in only)]
    workspace.progress.stage(
        f"references: {', '.join(names) or 'none'} (preprocessing on validation)"
    )
    if inputs.test_dm.feature_dim != inputs.test_dm.signature_dim and "nearest_signature" in names:
        names.remove("nearest_signature")  # cosine needs d = k
    results = {}
    for name in names:
        model_cfg = inputs.model if name == "untrained" else model_config(name)

        def run(model_cfg=model_cfg, name=name) -> dict:
            return evaluate_reference(settings, workspace, inputs, name, model_cfg).to_json()

        saved = workspace.saved(workspace.reference(name), run)
        results[name] = result = ReferenceResult.from_json(saved)
        chosen = {**result.data, **result.model}
        workspace.progress(
            f"{name}: val {result.val_score:.4f} with "
            + ", ".join(f"{k}={v}" for k, v in chosen.items())
        )
    return results


def evaluate_reference(
    settings: ProtocolSettings, workspace: Workspace, inputs: Inputs, name: str, model_cfg: Any
) -> ReferenceResult:
    """One reference: every preprocessing option (and its own grid) scored on the validation
    folds, the best tested once (its model and test distances kept beside its result)."""
    from src.protocol.training import final_metrics

    seed, metric = inputs.seed, settings.selection_metric
    trainer, miner, pool = inputs.trainer, inputs.miner_cfg("random"), inputs.pool
    tried = []
    for option in preprocessing_options(inputs.preprocessing):
        fixed = grid_choice(inputs, model_cfg, option)
        cfg = OmegaConf.merge(model_cfg, fixed)
        val = [
            final_metrics(
                inputs.data.get("val", f, seed, option), cfg, miner, trainer, 0, seed, pool_cfg=pool
            )
            for f in inputs.folds
        ]
        score = float(np.mean([v[metric] for v in val]))
        tried.append({"data": option, "model": fixed, "val": val, "val_score": score})
    best = max(range(len(tried)), key=lambda i: (tried[i]["val_score"], -i))
    pick = tried[best]
    gamma = float(np.mean([v.get("val/gamma", 0.0) for v in pick["val"]]))
    test_dm = inputs.data.get("test", inputs.folds[0], seed, pick["data"])
    keep = workspace.reference(name).with_suffix("")
    cfg = OmegaConf.merge(model_cfg, pick["model"])
    test = final_metrics(test_dm, cfg, miner, trainer, 0, seed, gamma, keep, pool)
    return ReferenceResult(
        val=pick["val"],
        gamma=gamma,
        val_score=pick["val_score"],
        data=pick["data"],
        model=pick["model"],
        searched=[{k: t[k] for k in ("data", "model", "val_score")} for t in tried],
        test=test,
    )


def reference_rows(refs: dict[str, ReferenceResult]) -> list[dict]:
    """``protocol.csv`` rows of the references evaluated here (one run each)."""
    from src.protocol.report.results import summarise

    return [
        summarise(
            name,
            "untrained" if name == "untrained" else "reference",
            [r.test],
            r.val_score,
            {
                **{f"data.{k}": v for k, v in r.data.items()},
                **{f"model.{k}": v for k, v in r.model.items()},
                "gamma": r.gamma,
            },
        )
        for name, r in refs.items()
    ]


def grid_choice(inputs: Inputs, model_cfg: Any, option: dict) -> dict:
    """A closed-form model's own hyper-parameters (its declared
    :attr:`~src.models.closed_form.ClosedFormClassifier.grid_axes`; ESZSL: γ, λ; SAE:
    direction, λ) with the best mean validation ZSL over the protocol's folds under one
    preprocessing ``option``, as one-value lists (``{"gammas": [γ], "lambdas": [λ]}``); ``{}``
    for a model without a grid."""
    import hydra
    import torch

    from src.models.closed_form import ClosedFormClassifier

    model = hydra.utils.get_class(model_cfg._target_)
    if not issubclass(model, ClosedFormClassifier):
        return {}
    rows, columns = model.grid_axes
    grids = []
    for fold in inputs.folds:
        dm = inputs.data.get("val", fold, inputs.seed, option)
        split, values = dm.make_split("val"), (list(model_cfg[rows]), list(model_cfg[columns]))
        grids.append(model.validation_grid(split, dm.signatures, *values))
    mean = torch.stack(grids).mean(dim=0)
    i, j = divmod(int(mean.argmax()), mean.shape[1])  # the first maximum
    return {rows: [model_cfg[rows][i]], columns: [model_cfg[columns][j]]}
