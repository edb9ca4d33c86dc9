"""A full-scale rehearsal of the protocol without data: one trial and one refit on a synthetic
dataset shaped like a benchmark (``data=synthetic data.like=…``), timed, with the peak memory
and the projected time of the whole default protocol.

    python scripts/rehearsal.py cub                  # CPU
    python scripts/rehearsal.py awa2 trainer=gpu     # one GPU (peak GPU memory too)

Extra arguments are overrides of ``conf/protocol.yaml``. The trial is the protocol's first one
(the configured defaults of the metric with ``random`` negatives): ``protocol.max_epochs``
epochs on each validation fold. The refit trains on trainval for ``protocol.max_epochs`` epochs
and tests once. The projection counts the default protocol's searched rows × trials and refits
× seeds at these two times (the trained references' trials counted at the metric's cost; the
closed-form references, the bootstrap and any epoch extension left out), for one process;
divide by the workers for ``protocol.workers``. The last line is one JSON object.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(like: str, overrides: list[str]) -> dict:
    sys.path.insert(0, str(ROOT))
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    import src.runs.resolvers  # noqa: F401  (the config resolvers)

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("protocol", overrides=["data=synthetic", f"data.like={like}", *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = "/tmp/zsl-rehearsal"  # nothing is written there
    import optuna
    import torch

    from src.protocol import Protocol
    from src.protocol.search import score_setting, search_context
    from src.protocol.spaces import default_params, space
    from src.protocol.training import final_metrics

    gpu = torch.cuda.is_available() and cfg.trainer.get("accelerator") in ("gpu", "cuda")
    if cfg.protocol.get("threads"):
        torch.set_num_threads(int(cfg.protocol.threads))
    start = time.perf_counter()
    protocol = Protocol(cfg)
    inputs = protocol.inputs
    ctx = search_context(protocol.settings, inputs, "random")
    miner = inputs.miner_cfg("random")
    setup_s = time.perf_counter() - start

    defaults = optuna.trial.FixedTrial(default_params(ctx, miner, inputs.preprocessing))
    values = space(defaults, ctx, miner)  # the study's first trial: the configured defaults
    start = time.perf_counter()
    trial = score_setting(ctx, values, miner)
    trial_s = time.perf_counter() - start

    start = time.perf_counter()
    dm = inputs.data.get("test", inputs.folds[0], int(cfg.seed), {})
    epochs = int(cfg.protocol.max_epochs)
    refit = final_metrics(
        dm, cfg.model, miner, cfg.trainer, epochs, 1, trial["gamma"], pool_cfg=cfg.get("pool")
    )
    refit_s = time.perf_counter() - start

    p = cfg.protocol
    rows = len(inputs.specs)
    mined = [s for s in p.strategies if s not in ("random", "random_fixed")]
    refits = (rows + int(bool(p.ablation and mined))) * len(p.seeds)
    trials = rows * int(p.n_trials)
    projected_s = setup_s + trials * trial_s + refits * refit_s
    result = {
        "like": like,
        "device": torch.cuda.get_device_name()
        if gpu
        else f"cpu ({torch.get_num_threads()} threads)",
        "d": dm.feature_dim,
        "k": dm.signature_dim,
        "folds": inputs.folds,
        "epochs": epochs,
        "setup_s": round(setup_s, 1),
        "trial_s": round(trial_s, 1),
        "refit_s": round(refit_s, 1),
        "trial_val_zsl": round(trial["score"], 4),
        "refit_test_zsl": round(refit["test/zsl_acc"], 4),
        "projected": f"{trials} trials + {refits} refits",
        "projected_h": round(projected_s / 3600, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
    }
    if gpu:
        result["peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(f"usage: python {sys.argv[0]} apy|awa1|awa2|cub|sun [overrides…]")
    main(sys.argv[1], sys.argv[2:])
