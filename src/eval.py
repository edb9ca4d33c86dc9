"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=<run>/checkpoints/last.ckpt [data=…]``.

By default the checkpoint is evaluated as its run was configured: the data config recorded in
the checkpoint (dataset, split mode, preprocessing, seed) is used, with any ``data.<key>=…``
of the command line on top; ``data=<name>`` evaluates on that data instead. A checkpoint is
never evaluated on another dataset than the one it was trained on (same name, class names and
split sizes). The evaluation split follows ``data.split_mode`` (``test``: test_seen and
test_unseen; ``val``: the validation classes). The job writes ``metrics.json``,
``config.yaml`` (the config evaluated, data included), ``per_class.csv`` and ``confusion.png``
into its own folder, and refuses a folder that holds a finished run (``overwrite=true`` to
replace it). Any :class:`~src.models.classifier.ZSLClassifier` subclass loads: the checkpoint
names the class that saved it. ``calibration_gamma=<γ>`` fixes the γ of the calibrated metrics
(e.g. ``val/gamma`` of a ``split_mode=val`` run) instead of the one the model was configured
with.
"""

from __future__ import annotations

if __name__ == "__main__":  # Hydra reads its flags before the heavy imports below (fast --help)
    from src.cli.commands import evaluate  # also the console script zsl-eval

    evaluate()

import copy
import importlib
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from src.cli.config_checks import check_eval_config
from src.cli.job import (
    print_results,
    scalar_metrics,
    seed_run,
    task_wrapper,
    write_metrics,
)
from src.core.provenance import provenance_fields
from src.core.rank import is_rank_zero
from src.evaluation.gamma import TestGammaFromValidation
from src.evaluation.reports import write_eval_reports
from src.models.classifier import CLASS_PATH_KEY, ZSLClassifier
from src.runs import resolvers  # noqa: F401  (the config resolvers)
from src.runs.checkpoints import (
    RESTRICTED,
    RUN_KEY,
    check_same_dataset,
    dataset_identity,
    read_checkpoint,
)
from src.runs.folder import mark_running, plan_run_folder, prepare_run_folder, refuse_if_running

log = logging.getLogger(__name__)


def checkpoint_class(checkpoint: dict[str, Any], ckpt_path: str) -> type[ZSLClassifier]:
    """The ZSLClassifier subclass that saved ``checkpoint``, read from the class path that
    every ZSLClassifier writes into its checkpoints.

    Raises:
        ValueError: when the checkpoint names no class (not written by a ZSLClassifier), or
            its class cannot be imported or is not a ZSLClassifier.
    """
    class_path = checkpoint.get(CLASS_PATH_KEY)
    if class_path:
        module, _, name = class_path.rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise ValueError(
                f"ckpt_path={ckpt_path} was saved by {class_path}, which cannot be imported "
                f"here ({error})."
            ) from error
        if not (isinstance(cls, type) and issubclass(cls, ZSLClassifier)):
            raise ValueError(f"ckpt_path={ckpt_path}: {class_path} is not a ZSLClassifier.")
        return cls
    raise ValueError(
        f"ckpt_path={ckpt_path} does not name the model class that saved it (no "
        f"'{CLASS_PATH_KEY}' entry): it was not written by a ZSLClassifier of this code; "
        "train the model again with src.train."
    )


def load_checkpoint(ckpt_path: str, feature_dim: int, signature_dim: int) -> ZSLClassifier:
    """Load a model of any ZSLClassifier subclass; check that its shapes fit the data."""
    path = Path(ckpt_path)
    checkpoint = read_checkpoint(path)
    cls = checkpoint_class(checkpoint, ckpt_path)
    model = cls.load_from_checkpoint(path, map_location="cpu", **RESTRICTED)
    expected = (model.hparams.get("feature_dim"), model.hparams.get("signature_dim"))
    if expected != (feature_dim, signature_dim):
        raise ValueError(
            f"ckpt_path={ckpt_path} was trained with feature_dim={expected[0]}, "
            f"signature_dim={expected[1]}, but the configured data has feature_dim={feature_dim}, "
            f"signature_dim={signature_dim}: evaluate it on data of the same kind."
        )
    return model


def command_line_overrides() -> list[str]:
    """The task overrides of this Hydra job (empty outside Hydra)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return []
    return [str(o) for o in HydraConfig.get().overrides.task]


def evaluation_data(cfg: DictConfig, checkpoint: dict[str, Any]) -> tuple[DictConfig, str]:
    """The data config to evaluate on, and where it came from.

    The checkpoint's recorded run config gives it (its dataset, split mode and preprocessing),
    with the command line's ``data.<key>=…`` overrides on top; ``data=<name>`` on the command
    line, or a checkpoint without a record, uses the configured ``data``.
    """
    keys = [o.partition("=")[0].lstrip("+~") for o in command_line_overrides()]
    recorded = ((checkpoint.get(RUN_KEY) or {}).get("config") or {}).get("data")
    if "data" in keys:
        return cfg.data, "the command line (data=…)"
    if not recorded:
        log.warning(
            "ckpt_path=%s records no run config (not saved by src.train): evaluating on the "
            "configured data (%s).",
            cfg.ckpt_path,
            cfg.data.get("_target_"),
        )
        return cfg.data, "the configured data (the checkpoint records none)"
    data = OmegaConf.create(recorded)
    changed = sorted({k.split(".", 1)[1] for k in keys if k.startswith("data.")})
    for key in changed:
        OmegaConf.update(data, key, OmegaConf.select(cfg.data, key), force_add=True)
    source = "the checkpoint's run config"
    return data, source + (
        f" with data.{', data.'.join(changed)} from the command line" if changed else ""
    )


@task_wrapper
def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` (by default on its own run's data); return the metrics."""
    output_dir = Path(cfg.paths.output_dir)
    composed = copy.deepcopy(cfg)
    plan = None
    if is_rank_zero():
        refuse_if_running(output_dir)
        plan = plan_run_folder(output_dir, bool(cfg.get("overwrite")), None)
    checkpoint = read_checkpoint(cfg.ckpt_path)
    data_cfg, source = evaluation_data(cfg, checkpoint)
    with open_dict(cfg):
        cfg.data = data_cfg
    log.info("Evaluating %s on data from %s: %s", cfg.ckpt_path, source, data_cfg.get("_target_"))
    check_eval_config(cfg)  # every value, the checkpoint's data config included, before reading
    seed_run(cfg.seed)
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    model = load_checkpoint(cfg.ckpt_path, datamodule.feature_dim, datamodule.signature_dim)
    check_same_dataset(checkpoint, dataset_identity(datamodule), cfg.ckpt_path, "evaluate")
    trained_on = ((checkpoint.get(RUN_KEY) or {}).get("config") or {}).get("data") or {}
    del checkpoint
    if cfg.get("calibration_gamma") is not None:
        model.calibration_gamma = float(cfg.calibration_gamma)
    output_dir.mkdir(parents=True, exist_ok=True)
    if plan is not None:
        prepare_run_folder(output_dir, plan, composed)
        (output_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        mark_running(output_dir)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    if datamodule.split_mode == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.callbacks.append(TestGammaFromValidation())  # configured γ, or from validation
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = scalar_metrics(trainer.callback_metrics)
    if model.last_eval is not None:
        write_eval_reports(model.last_eval, datamodule.class_names, output_dir)
    path = write_metrics(
        {**metrics, "ckpt_path": str(cfg.ckpt_path), **provenance_fields()}, output_dir
    )
    print_results(metrics, path)
    if datamodule.split_mode == "val" and trained_on.get("split_mode") == "test":
        log.warning(
            "ckpt_path=%s was trained with data.split_mode=test, on trainval, which holds the "
            "validation classes: these val/ metrics score classes it trained on, not zero-shot "
            "ones. Validate a checkpoint trained with data.split_mode=val.",
            cfg.ckpt_path,
        )
    return metrics


def run(cfg: DictConfig) -> None:
    """The job of ``python -m src.eval``."""
    evaluate(cfg)
