"""Stage 1 of the protocol: the references (nearest signature, ESZSL, the untrained metric)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

CONF = Path(__file__).resolve().parents[2] / "conf"


def evaluate_references(protocol: Any) -> dict[str, dict]:
    """Each reference on the validation folds and once on test (γ: the folds' mean ``val/gamma``);
    saved per reference in ``references/<name>.json``."""
    from src.tuning.runs import final_metrics

    protocol.next_stage("references: nearest signature, ESZSL, untrained metric")
    names = [str(n) for n in protocol.p.references]
    if (
        protocol.test_dm.feature_dim != protocol.test_dm.signature_dim
        and "nearest_signature" in names
    ):
        names.remove("nearest_signature")  # cosine needs d = k
    seed, results = int(protocol.cfg.seed), {}
    for name in names:
        model_cfg = (
            protocol.cfg.model
            if name == "untrained"
            else OmegaConf.load(CONF / "model" / f"{name}.yaml")
        )
        miner = protocol.miner_cfg("random")

        def run(model_cfg=model_cfg, miner=miner, name=name) -> dict:
            val = [
                final_metrics(
                    protocol.data.get("val", f, seed, {}),
                    model_cfg,
                    miner,
                    protocol.cfg.trainer,
                    0,
                    seed,
                )
                for f in protocol.folds
            ]
            gamma = float(np.mean([v.get("val/gamma", 0.0) for v in val]))
            keep = protocol.folder / "references" / name
            test = final_metrics(
                protocol.test_dm, model_cfg, miner, protocol.cfg.trainer, 0, seed, gamma, keep
            )
            score = float(np.mean([v[str(protocol.p.selection_metric)] for v in val]))
            return {"val": val, "gamma": gamma, "val_score": score, "test": test}

        results[name] = protocol.saved(protocol.folder / "references" / f"{name}.json", run)
        protocol.progress(f"{name}: val {results[name]['val_score']:.4f}")
    return results
