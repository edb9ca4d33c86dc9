"""Evaluate a checkpoint: ``python -m src.eval ckpt_path=<run>/checkpoints/last.ckpt [data=…]``.

Evaluates on the configured data's evaluation split (``data.split_mode=test``: test_seen and
test_unseen; ``val``: the validation classes) and writes ``metrics.json``, ``per_class.csv``
and ``confusion.png`` in the job folder. Any :class:`~src.models.classifier.ZSLClassifier`
subclass loads: the checkpoint names the class that saved it. ``calibration_gamma=<γ>`` fixes
the γ of the calibrated metrics (e.g. ``val/gamma`` of a ``split_mode=val`` run) instead of the
one the model was configured with.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any

import hydra
import torch
from omegaconf import DictConfig

from src.metrics.reports import write_eval_reports
from src.models import ESZSLClassifier, MetricZSLSystem, NearestSignatureClassifier
from src.models.classifier import CLASS_PATH_KEY, ZSLClassifier
from src.utils import env  # noqa: F401  (loads .env and registers config resolvers)
from src.utils.run import print_results, scalar_metrics, seed_run, task_wrapper, write_metrics

#: classes tried, by their constructor's arguments, for checkpoints that do not name their class
KNOWN_CLASSES: tuple[type[ZSLClassifier], ...] = (
    MetricZSLSystem,
    ESZSLClassifier,
    NearestSignatureClassifier,
)


def checkpoint_class(checkpoint: dict[str, Any], ckpt_path: str) -> type[ZSLClassifier]:
    """The ZSLClassifier subclass that saved ``checkpoint``.

    Read from the class path the checkpoint holds (every ZSLClassifier writes it); for older
    checkpoints, the known class (``KNOWN_CLASSES``) whose constructor takes exactly the saved
    hyper-parameters' names (all its required ones among them), the one with the fewest
    arguments when several fit.

    Raises:
        ValueError: when the class cannot be imported, is not a ZSLClassifier, or no known
            class fits the saved hyper-parameters.
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
    saved = set(checkpoint.get("hyper_parameters") or {})
    fits = []
    for cls in KNOWN_CLASSES:
        params = dict(inspect.signature(cls.__init__).parameters)
        params.pop("self", None)
        required = {n for n, p in params.items() if p.default is inspect.Parameter.empty}
        if required <= saved <= set(params):
            fits.append((len(params), cls))
    if not fits:
        raise ValueError(
            f"ckpt_path={ckpt_path} does not name the model class that saved it, and its "
            f"hyper-parameters {sorted(saved)} fit none of "
            f"{[c.__name__ for c in KNOWN_CLASSES]}: save it with a ZSLClassifier subclass "
            "of this code."
        )
    return min(fits, key=lambda fit: fit[0])[1]


def load_checkpoint(ckpt_path: str, feature_dim: int, signature_dim: int) -> ZSLClassifier:
    """Load a model of any ZSLClassifier subclass; check that its shapes fit the data."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint file.")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    cls = checkpoint_class(checkpoint, ckpt_path)
    model = cls.load_from_checkpoint(path, map_location="cpu")
    expected = (model.hparams.get("feature_dim"), model.hparams.get("signature_dim"))
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
    if cfg.get("calibration_gamma") is not None:
        model.calibration_gamma = float(cfg.calibration_gamma)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[])
    if datamodule.split_mode == "val":
        trainer.validate(model, datamodule=datamodule, verbose=False)
    else:
        trainer.test(model, datamodule=datamodule, verbose=False)
    metrics = scalar_metrics(trainer.callback_metrics)
    path = write_metrics({**metrics, "ckpt_path": str(cfg.ckpt_path)}, output_dir)
    if model.last_eval is not None:
        write_eval_reports(model.last_eval, datamodule.class_names, output_dir)
    print_results(metrics, path)
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="eval.yaml")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
