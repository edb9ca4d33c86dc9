"""The test-time calibration γ, chosen on the validation split by the entry points.

GBU: γ (added to the seen classes' distances) is a hyper-parameter, so it is chosen on
validation images only. ``src.train``, ``src.eval`` and the protocol test with the
:class:`TestGammaFromValidation` callback, which calls :func:`fix_test_gamma` once the model is
set up (closed-form models fit at set-up) and before the first test image is scored; the
LightningModule itself never reads data beyond its batches.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from src.data.arrays import DataError
from src.metrics import choose_gamma, split_by_class
from src.models.classifier import ZSLClassifier

log = logging.getLogger(__name__)


def validation_gamma(model: ZSLClassifier, datamodule: Any) -> float | None:
    """The γ with the best calibrated H on the datamodule's validation split.

    Scores ``make_split("val")``'s evaluation images (val classes as unseen, held-out
    train-class images as seen, ranked among the train ∪ val classes) with the model's current
    weights, the features standardised as its training images were. Reads no test image. In
    ``split_mode=test`` that model was trained on trainval, which holds the val classes'
    images, so this γ is an approximation; the GBU practice is to take ``val/gamma`` of the
    ``split_mode=val`` run and pass it as ``model.calibration_gamma``. ``None`` (with a
    warning) when the data has no validation split.
    """
    try:
        split = datamodule.make_split("val", fitted_on=datamodule.split_mode)
    except DataError as error:  # e.g. the dataset has no train/val split
        log.warning(
            "No validation split to choose the calibration γ on (%s): the calibrated metrics "
            "are skipped; set model.calibration_gamma to report them.",
            error,
        )
        return None
    seen, unseen = split.eval["seen"], split.eval["unseen"]
    features = torch.cat([seen.features, unseen.features])
    distances = model.score(features, datamodule.eval_batch_size)
    labels = torch.cat([seen.labels, unseen.labels])
    scores = split_by_class(distances, labels, split.seen_classes, split.unseen_classes)
    gamma = choose_gamma(scores, gammas=model.gamma_grid)
    log.info(
        "Calibration γ=%g chosen on the validation split (%d val-class and %d held-out "
        "train-class images).",
        gamma,
        len(scores.unseen_labels),
        len(scores.seen_labels),
    )
    return gamma


def fix_test_gamma(model: ZSLClassifier, datamodule: Any) -> float | None:
    """Set ``model.calibration_gamma`` for testing: the configured one, else
    :func:`validation_gamma`; returns it."""
    if model.calibration_gamma is None:
        model.calibration_gamma = validation_gamma(model, datamodule)
    return model.calibration_gamma


class TestGammaFromValidation(L.Callback):
    """Sets the model's test γ (:func:`fix_test_gamma`) at the start of testing."""

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        fix_test_gamma(pl_module, trainer.datamodule)
