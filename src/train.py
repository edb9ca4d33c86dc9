"""Train a metric ZSL model: ``python -m src.train +experiment=hard_neg [overrides]``.

compose config → seed → data → model → callbacks, loggers, trainer → fit → evaluate once →
``metrics.json``, ``per_class.csv`` and ``confusion.png``. Selection uses validation metrics
only: in ``split_mode=val`` the best validation checkpoint is re-evaluated; in
``split_mode=test`` the final epoch is tested once.
"""

from __future__ import annotations

if __name__ == "__main__":  # Hydra reads its flags before the heavy imports below (fast --help)
    from src.cli.commands import train  # also the console script zsl-train

    train()

import copy
import logging
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.callbacks import NegativePoolRefresh, ResumedOptimizerSettings, RunRecord
from src.cli.builders import instantiate_group, make_trainer
from src.cli.config_checks import check_resume_sweep_mode, check_train_config
from src.cli.job import (
    log_config,
    log_reports_to_wandb,
    print_config,
    print_results,
    scalar_metrics,
    seed_run,
    task_wrapper,
    update_wandb_summary,
    write_metrics,
)
from src.core.provenance import provenance_fields
from src.core.rank import is_rank_zero
from src.evaluation.gamma import TestGammaFromValidation
from src.evaluation.reports import write_eval_reports
from src.runs import resolvers  # noqa: F401  (the config resolvers)
from src.runs.checkpoints import RESTRICTED, check_same_dataset, dataset_identity, read_checkpoint
from src.runs.folder import mark_running, plan_run_folder, prepare_run_folder, refuse_if_running
from src.runs.history import HistoryCSVLogger, history_rows
from src.runs.resume import resume_settings, resume_sweep_state
from src.runs.weights import check_state_shapes

log = logging.getLogger(__name__)

CONFIG_GROUPS = (
    "data", "model", "miner", "pool", "callbacks", "logger", "trainer", "paths", "seed"
)  # fmt: skip


@task_wrapper
def train(cfg: DictConfig) -> dict[str, float]:
    """Run one training job described by ``cfg``; return its final metrics."""
    output_dir = Path(cfg.paths.output_dir)
    composed = copy.deepcopy(cfg)  # as Hydra records it in .hydra/config.yaml
    current = OmegaConf.to_container(cfg, resolve=True)
    rank_zero = is_rank_zero()  # under DDP every rank runs this function in the same folder
    plan = None
    check_resume_sweep_mode(cfg.get("resume_sweep"))
    if rank_zero:
        refuse_if_running(output_dir)
    if cfg.get("resume_sweep"):
        resumed = resume_sweep_state(cfg, current)
        if isinstance(resumed, dict):
            log.info("resume_sweep: %s already finished; skipping it.", output_dir)
            return resumed
        if resumed is not None:
            log.info("resume_sweep: continuing the interrupted job from %s", resumed)
            cfg.ckpt_path = resumed
    elif rank_zero:
        plan = plan_run_folder(output_dir, bool(cfg.get("overwrite")), cfg.get("ckpt_path"))
    check_train_config(cfg)  # every value, before any data is read
    checkpoint = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    seed_run(cfg.seed)

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")  # the model's shapes come from the data
    dataset = dataset_identity(datamodule)
    history: list[dict] = []
    if checkpoint is not None:  # checked before anything is written
        check_same_dataset(checkpoint, dataset, cfg.ckpt_path, "resume")
        resume_settings(checkpoint, current, cfg.ckpt_path)
        history = history_rows(checkpoint, cfg.ckpt_path) if rank_zero else []
    model = hydra.utils.instantiate(
        cfg.model, feature_dim=datamodule.feature_dim, signature_dim=datamodule.signature_dim
    )
    if checkpoint is not None:
        check_state_shapes(checkpoint, model, cfg.ckpt_path)
        del checkpoint
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero:
        if plan is not None:
            prepare_run_folder(output_dir, plan, composed)
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        mark_running(output_dir)
        if cfg.get("print_config"):
            print_config(cfg, CONFIG_GROUPS)

    callbacks = instantiate_group(cfg.get("callbacks"))
    callbacks.append(RunRecord(current, dataset, str(output_dir)))
    if cfg.get("ckpt_path"):
        callbacks.append(ResumedOptimizerSettings())
    loggers = instantiate_group(cfg.get("logger"))
    for logger in loggers:
        if isinstance(logger, HistoryCSVLogger) and rank_zero:
            logger.start(history)
    trainer = make_trainer(cfg.trainer, callbacks=callbacks, logger=loggers)
    log_config(loggers, cfg)

    if model.trainable:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), **RESTRICTED)
    else:
        log.info(
            "%s has nothing to train by gradient: evaluating it directly.", type(model).__name__
        )
    fit_metrics = scalar_metrics(trainer.callback_metrics)

    last_epoch = trainer.current_epoch - 1 if model.trainable and trainer.current_epoch else None
    selected_epoch = last_epoch
    if datamodule.split_mode == "val":
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        log.info("Evaluating the checkpoint selected on validation: %s", best or "final weights")
        if best:
            selected_epoch = int(read_checkpoint(best, "best checkpoint")["epoch"])
        # A separate trainer without loggers: the per-epoch validation curve stays as trained.
        evaluator = make_trainer(cfg.trainer, logger=False, callbacks=[])
        evaluator.validate(
            model, datamodule=datamodule, ckpt_path=best, verbose=False, **RESTRICTED
        )
        final = scalar_metrics(evaluator.callback_metrics)
    else:
        trainer.callbacks.append(TestGammaFromValidation())  # configured γ, or from validation
        trainer.test(model, datamodule=datamodule, verbose=False)
        final = scalar_metrics(trainer.callback_metrics)
    # the epochs (0-based, as in csv/metrics.csv): train/* and pool/* are the last epoch's,
    # val/* and test/* the selected one's; then the code that produced them
    epochs = {
        "epoch/selected": selected_epoch,
        "epoch/last": last_epoch,
        "epoch/warmup": warmup_epochs(callbacks),  # random negatives before the strategy
    }
    metrics = {**fit_metrics, **final, **epochs, **provenance_fields()}
    # per_class.csv and confusion.png of the final evaluation (gathered on every rank)
    stage = datamodule.split_mode
    if model.last_eval is not None and is_rank_zero():
        reports = write_eval_reports(model.last_eval, datamodule.class_names, output_dir)
        log_reports_to_wandb(loggers, reports, stage)
    # metrics.json last: its presence marks the run as finished
    path = write_metrics(metrics, output_dir)
    # W&B's summary = metrics.json (in split_mode=val: the selected checkpoint, not the last epoch)
    update_wandb_summary(loggers, metrics)
    print_results({k: v for k, v in metrics.items() if k.startswith(f"{stage}/")}, path)
    return metrics


def warmup_epochs(callbacks: list) -> int | None:
    """The pool's warm-up epochs of random negatives (``None`` without a pool)."""
    pools = [c.pool for c in callbacks if isinstance(c, NegativePoolRefresh)]
    return pools[0].warmup_epochs if pools else None


def run(cfg: DictConfig) -> float | None:
    """The job of ``python -m src.train``: train, and return the metric a sweeper optimises."""
    metrics = train(cfg)
    selected = cfg.get("optimized_metric")
    return metrics.get(selected) if selected else None
