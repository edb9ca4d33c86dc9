"""Train a metric ZSL model: ``python -m src.train +experiment=hard_neg [overrides]``.

compose config → seed → data → model → callbacks, loggers, trainer → fit → evaluate once →
``metrics.json``, ``per_class.csv`` and ``confusion.png``. Selection uses validation metrics
only: in ``split_mode=val`` the best validation checkpoint is re-evaluated; in
``split_mode=test`` the final epoch is tested once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.metrics.reports import write_eval_reports
from src.utils import env  # noqa: F401  (loads .env and registers config resolvers)
from src.utils.run import (
    instantiate_group,
    is_rank_zero,
    log_reports_to_wandb,
    print_config,
    print_results,
    resume_state,
    scalar_metrics,
    seed_run,
    task_wrapper,
    write_metrics,
)

log = logging.getLogger(__name__)

CONFIG_GROUPS = ("data", "model", "miner", "callbacks", "logger", "trainer", "paths", "seed")


@task_wrapper
def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by ``cfg``; return its final metrics."""
    output_dir = Path(cfg.paths.output_dir)
    resumed = resume_state(cfg)
    if isinstance(resumed, dict):
        log.info("resume_sweep: %s already finished; skipping it.", output_dir)
        return resumed
    if resumed is not None:
        log.info("resume_sweep: continuing the interrupted job from %s", resumed)
        cfg.ckpt_path = resumed
    output_dir.mkdir(parents=True, exist_ok=True)
    if is_rank_zero():  # under DDP every rank runs this function in the same folder
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        if cfg.get("print_config"):
            print_config(cfg, CONFIG_GROUPS)
    seed_run(cfg.seed)

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")  # the model's shapes come from the data
    model = hydra.utils.instantiate(
        cfg.model, feature_dim=datamodule.feature_dim, signature_dim=datamodule.signature_dim
    )
    callbacks = instantiate_group(cfg.get("callbacks"))
    loggers = instantiate_group(cfg.get("logger"))
    trainer = hydra.utils.instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if model.trainable:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    else:
        log.info(
            "%s has nothing to train by gradient: evaluating it directly.", type(model).__name__
        )
    fit_metrics = scalar_metrics(trainer.callback_metrics)

    if datamodule.split_mode == "val":
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        log.info("Evaluating the checkpoint selected on validation: %s", best or "final weights")
        # A separate trainer without loggers: the per-epoch validation curve stays as trained.
        evaluator = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
        evaluator.validate(model, datamodule=datamodule, ckpt_path=best, verbose=False)
        final = scalar_metrics(evaluator.callback_metrics)
    else:
        trainer.test(model, datamodule=datamodule, verbose=False)
        final = scalar_metrics(trainer.callback_metrics)
    metrics = {**fit_metrics, **final}
    path = write_metrics(metrics, output_dir)
    # per_class.csv and confusion.png of the final evaluation (gathered on every rank)
    stage = datamodule.split_mode
    if model.last_eval is not None and is_rank_zero():
        reports = write_eval_reports(model.last_eval, datamodule.class_names, output_dir)
        log_reports_to_wandb(loggers, reports, stage)
    print_results({k: v for k, v in metrics.items() if k.startswith(f"{stage}/")}, path)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="train.yaml")
def main(cfg: DictConfig) -> float | None:
    metrics = train(cfg)
    selected = cfg.get("optimized_metric")
    return metrics.get(selected) if selected else None


if __name__ == "__main__":
    main()
