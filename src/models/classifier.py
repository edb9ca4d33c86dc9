"""What every zero-shot model shares: the dataset's classes and the GBU evaluation."""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from src.data.arrays import DataError
from src.metrics import (
    EvalScores,
    PerClassAccuracy,
    ausuc,
    choose_gamma,
    gzsl_sweep,
    harmonic_mean,
    per_class_topk,
    predict,
)
from src.metrics.reports import EvalResult

log = logging.getLogger(__name__)

#: checkpoint key holding the import path of the class that saved it (read by ``src.eval``)
CLASS_PATH_KEY = "zsl_classifier_class"
#: k of the top-k ZSL accuracy (``{stage}/zsl_top5``)
TOP_K = 5
#: decimals of the logged AUSUC. AUSUC depends on the order of the critical γ of seen and of
#: unseen images; the float noise of training (weights equal to ~1e-7 between two runs of the
#: same seed) can swap two nearly equal ones, which moves AUSUC by ~1e-6. Rounded, it is as
#: reproducible as the count-based metrics (the calibrated metrics are: γ is rounded too).


class ZSLClassifier(L.LightningModule):
    """Scores images against class signatures; evaluates ZSL and GZSL per the GBU protocol.

    Subclasses implement :meth:`class_distances` (smaller = more consistent). Signatures and the
    seen/unseen classes come from the datamodule at ``setup``; they are not saved in checkpoints.
    Evaluation dataloaders come in the order (unseen images, seen images).

    Every evaluation epoch logs, with ``{stage}`` = ``val`` or ``test``:

    - ``zsl_acc``, ``gzsl_s``, ``gzsl_u``, ``gzsl_H``: per-class counts, summed across processes;
    - ``zsl_top5``: per-class top-5 accuracy of the unseen images among the unseen classes;
    - ``ausuc``: area under the seen–unseen accuracy curve traced by the calibration γ, exact
      (every critical γ);
    - ``gamma``, ``gzsl_s_cal``, ``gzsl_u_cal``, ``gzsl_H_cal``: calibrated stacking, γ added to
      the seen classes' distances. γ is ``calibration_gamma`` when set; otherwise, at
      validation, the γ with the best H on the validation images themselves (so ``val/*_cal``
      is the best H reachable on validation, optimistic by construction); at test, the γ with
      the best H on the validation split (``datamodule.make_split("val")``: val-class images
      as unseen, held-out train-class images as seen, ranked among train ∪ val classes),
      scored by the model under test — test images are never read for the choice. In
      ``split_mode=test`` that model was trained on trainval, which holds the val classes'
      images, so this γ is an approximation; the GBU practice is to take ``val/gamma`` of the
      ``split_mode=val`` run and pass it as ``calibration_gamma`` to the test run.

    The distances and labels behind them are kept in DDP-safe list states (``EvalScores``), and
    the last evaluation stays available as :attr:`last_eval` (CPU tensors) for per-class reports.

    Args:
        calibration_gamma: fixed γ of the calibrated metrics; ``None`` chooses it (see above).
        gamma_grid: candidate γ for that choice; ``None``: the exact best γ over all reals
            (one candidate per interval between the critical values where a prediction flips).
    """

    #: whether :meth:`~lightning.Trainer.fit` has anything to learn
    trainable: bool = True

    def __init__(
        self,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        if calibration_gamma is not None and not _is_finite_number(calibration_gamma):
            raise ValueError(
                f"model.calibration_gamma={calibration_gamma} is invalid: it must be a finite "
                "number, or null to choose it on validation."
            )
        if gamma_grid is not None:
            grid = [gamma_grid] if _is_finite_number(gamma_grid) else gamma_grid
            try:
                grid = list(grid)
            except TypeError:
                grid = []
            if not grid or not all(_is_finite_number(g) for g in grid):
                raise ValueError(
                    f"model.gamma_grid={gamma_grid} is invalid: it must be a non-empty list of "
                    "finite numbers, or null for the exact choice."
                )
            gamma_grid = [float(g) for g in grid]
        self.calibration_gamma = None if calibration_gamma is None else float(calibration_gamma)
        self.gamma_grid = gamma_grid
        self.last_eval: EvalResult | None = None

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        self.register_buffer("signatures", dm.signatures.clone(), persistent=False)
        self.register_buffer("seen_classes", dm.seen_classes.clone(), persistent=False)
        self.register_buffer("unseen_classes", dm.unseen_classes.clone(), persistent=False)
        num_classes = len(dm.signatures)
        self.eval_metrics = torch.nn.ModuleDict(
            {
                "zsl_unseen": PerClassAccuracy(num_classes, dm.unseen_classes),
                "gzsl_unseen": PerClassAccuracy(num_classes, dm.unseen_classes),
                "gzsl_seen": PerClassAccuracy(num_classes, dm.seen_classes),
            }
        )
        self.eval_scores = torch.nn.ModuleDict({"unseen": EvalScores(), "seen": EvalScores()})

    @abstractmethod
    def class_distances(self, features: Tensor) -> Tensor:
        """Distance of every image to every class of the dataset (N × C)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cls = type(self)
        checkpoint[CLASS_PATH_KEY] = f"{cls.__module__}.{cls.__qualname__}"

    def _eval_step(self, batch: dict[str, Tensor], dataloader_idx: int) -> None:
        distances = self.class_distances(batch["features"])
        labels = batch["labels"]
        candidates = torch.cat([self.seen_classes, self.unseen_classes])
        gzsl_preds = predict(distances, candidates)
        if dataloader_idx == 0:  # unseen images
            self.eval_metrics["zsl_unseen"].update(predict(distances, self.unseen_classes), labels)
            self.eval_metrics["gzsl_unseen"].update(gzsl_preds, labels)
            self.eval_scores["unseen"].update(distances, labels)
        else:  # seen images
            self.eval_metrics["gzsl_seen"].update(gzsl_preds, labels)
            self.eval_scores["seen"].update(distances, labels)

    def _eval_epoch_end(self, stage: str) -> None:
        m = self.eval_metrics
        unseen, seen = m["gzsl_unseen"].compute(), m["gzsl_seen"].compute()
        values = {
            f"{stage}/zsl_acc": m["zsl_unseen"].compute(),
            f"{stage}/gzsl_s": seen,
            f"{stage}/gzsl_u": unseen,
            f"{stage}/gzsl_H": harmonic_mean(seen, unseen),
        }
        self.log_dict({k: v.float() for k, v in values.items()}, prog_bar=True)
        self.log_dict(self._score_metrics(stage))
        for metric in [*m.values(), *self.eval_scores.values()]:
            metric.reset()

    def _score_metrics(self, stage: str) -> dict[str, float]:
        """Top-5 ZSL, AUSUC and calibrated GZSL from the stored distances; sets ``last_eval``."""
        d_unseen, y_unseen = (t.cpu() for t in self.eval_scores["unseen"].compute())
        d_seen, y_seen = (t.cpu() for t in self.eval_scores["seen"].compute())
        seen, unseen = self.seen_classes.cpu(), self.unseen_classes.cpu()
        images = (d_seen, y_seen, d_unseen, y_unseen, seen, unseen)
        values = {
            f"{stage}/zsl_top5": float(per_class_topk(d_unseen, y_unseen, unseen, k=TOP_K)),
            f"{stage}/ausuc": float(ausuc(*images)),
        }
        gamma = self._calibration_gamma(stage, images)
        if gamma is not None:
            s, u, h = gzsl_sweep(*images, [gamma])
            values.update(
                {
                    f"{stage}/gamma": gamma,
                    f"{stage}/gzsl_s_cal": float(s[0]),
                    f"{stage}/gzsl_u_cal": float(u[0]),
                    f"{stage}/gzsl_H_cal": float(h[0]),
                }
            )
        self.last_eval = EvalResult(stage, d_unseen, y_unseen, d_seen, y_seen, seen, unseen, gamma)
        return values

    def _calibration_gamma(self, stage: str, images: tuple[Tensor, ...]) -> float | None:
        """γ of the calibrated metrics: configured, chosen on these validation images, or on
        the validation split (test stage); ``None`` when none is available."""
        if self.calibration_gamma is not None:
            return self.calibration_gamma
        if stage == "val":
            return choose_gamma(*images, gammas=self.gamma_grid)
        return self.validation_gamma()

    @torch.no_grad()
    def validation_gamma(self) -> float | None:
        """The γ with the best calibrated H on the datamodule's validation split.

        Scores ``make_split("val")``'s evaluation images (val classes as unseen, held-out
        train-class images as seen) against the train ∪ val classes with the current weights,
        the features standardised as the model's training images were. Reads
        no test image. ``None`` (with a warning) when the data has no validation split.
        """
        dm = self.trainer.datamodule
        try:
            # Val-split images, standardised as the run's own training images were.
            split = dm.make_split("val", fitted_on=dm.split_mode)
        except DataError as error:  # e.g. the dataset has no train/val split
            log.warning(
                "No validation split to choose the calibration γ on (%s): the calibrated "
                "metrics are skipped; set model.calibration_gamma to report them.",
                error,
            )
            return None
        unseen_features, seen_features = split.eval["unseen"].features, split.eval["seen"].features
        batch = getattr(dm, "eval_batch_size", 4096)

        def distances(features: Tensor) -> Tensor:
            chunks = features.split(batch)
            return torch.cat([self.class_distances(c.to(self.device)).cpu() for c in chunks])

        gamma = choose_gamma(
            distances(seen_features),
            split.eval["seen"].labels,
            distances(unseen_features),
            split.eval["unseen"].labels,
            split.seen_classes,
            split.unseen_classes,
            gammas=self.gamma_grid,
        )
        log.info(
            "Calibration γ=%g chosen on the validation split (%d val-class and %d held-out "
            "train-class images).",
            gamma,
            len(unseen_features),
            len(seen_features),
        )
        return gamma

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch, dataloader_idx)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
