"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=<run>/checkpoints/last.ckpt [data=…]``.

Evaluates on the configured data's evaluation split (``data.split_mode=test``: test_seen and
test_unseen; ``val``: the validation classes) and writes ``metrics.json`` in the job folder.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.models import MetricZSLSystem
from src.utils import env  # noqa: F401  (loads .env and registers config resolvers)
from src.utils.run import print_results, scalar_metrics, seed_run, task_wrapper, write_metrics


def load_checkpoint(ckpt_path: str, feature_dim: int, signature_dim: int) -> MetricZSLSystem:
    """Load a model and check that its shapes fit the data it will be evaluated on."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file.")
    model = MetricZSLSystem.load_from_checkpoint(path, map_location="cpu")
    expected = (model.hparams.feature_dim, model.hparams.signature_dim)
    if expected != (feature_dim, signature_dim):
        raise ValueError(
            f"ckpt_path={ckpt_path} was trained with feature_dim={expected[0]}, "
            f"signature_dim={expected[1]}, but the configured data has feature_dim={feature_dim}, "
            f"signature_dim={signature_dim}: evaluate it on data of the same kind."
        )
    return model


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.data``; return the metrics."""
    output_dir = Path(cfg.paths.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    seed_run(cfg.seed)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    model = load_checkpoint(cfg.ckpt_path, datamodule.feature_dim, datamodule.signature_dim)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    if datamodule.split_mode == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = scalar_metrics(trainer.callback_metrics)
    path = write_metrics({**metrics, "ckpt_path": str(cfg.ckpt_path)}, output_dir)
    print_results(metrics, path)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
