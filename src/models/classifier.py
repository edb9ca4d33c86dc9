"""What every zero-shot model shares: the dataset's classes and the GBU evaluation."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

import lightning as L
import torch
from torch import Tensor

from src.metrics import Evaluation, GZSLMetrics, choose_gamma, gzsl_results

#: checkpoint key holding the import path of the class that saved it (read by ``src.eval``)
CLASS_PATH_KEY = "zsl_classifier_class"
#: metrics shown in the progress bar
PROGRESS_METRICS = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H")


class ZSLClassifier(L.LightningModule):
    """Scores images against class signatures; evaluates ZSL and GZSL per the GBU protocol.

    Subclasses implement :meth:`class_distances` (smaller = more consistent). Signatures and the
    seen/unseen classes come from the datamodule at ``setup``; they are not saved in checkpoints.
    An evaluation image counts as seen or unseen by its label, whatever loader it comes from.

    Every evaluation epoch logs :func:`~src.metrics.gzsl_results` under ``{stage}/`` (``val`` or
    ``test``): ``zsl_acc``, ``zsl_top5``, ``gzsl_s``, ``gzsl_u``, ``gzsl_H``, ``ausuc`` and, when a
    calibration γ is known, ``gamma``, ``gzsl_s_cal``, ``gzsl_u_cal``, ``gzsl_H_cal`` (calibrated
    stacking, γ added to the seen classes' distances), and the counts ``ties`` / ``zsl_ties`` of
    images whose nearest class is tied (every accuracy scores a k-way tie 1/k: its expectation
    under random tie-breaking). γ is :attr:`calibration_gamma` when set;
    otherwise, at validation, the γ with the best H on the validation images themselves (so
    ``val/*_cal`` is the best H reachable on validation, optimistic by construction); at test
    there is none: the entry points choose it on the validation split before testing
    (:func:`src.evaluation.gamma.fix_test_gamma`) and set :attr:`calibration_gamma`. The module
    never reads data beyond its evaluation batches.

    The distances behind the metrics are kept in DDP-safe list states (:class:`GZSLMetrics`);
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
        self.last_eval: Evaluation | None = None

    def setup(self, stage: str) -> None:
        dm = self.trainer.datamodule
        self.register_buffer("signatures", dm.signatures.clone(), persistent=False)
        exact = getattr(dm, "exact_signatures", None)
        if exact is not None:
            self.register_buffer("exact_signatures", exact.clone(), persistent=False)
        self.register_buffer("seen_classes", dm.seen_classes.clone(), persistent=False)
        self.register_buffer("unseen_classes", dm.unseen_classes.clone(), persistent=False)
        self.gzsl = GZSLMetrics(dm.seen_classes, dm.unseen_classes)

    @abstractmethod
    def class_distances(self, features: Tensor) -> Tensor:
        """Distance of every image to every class of the dataset (N × C)."""

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        cls = type(self)
        checkpoint[CLASS_PATH_KEY] = f"{cls.__module__}.{cls.__qualname__}"

    def forward(self, features: Tensor) -> Tensor:
        """:meth:`class_distances` (what :meth:`exact_distances` calls with float64 weights)."""
        return self.class_distances(features)

    def exact_class_signatures(self) -> Tensor:
        """The class signatures in float64: the data module's (``exact_signatures``, normalised
        in float64) where it has them, else the float32 buffer cast."""
        exact = getattr(self, "exact_signatures", None)
        return exact if exact is not None else self.signatures.double()

    def exact_distances(self, features: Tensor) -> Tensor:
        """The distances every evaluation scores with (N × C, float64), so that distances equal
        by construction (identical signatures, an all-zero feature vector, L2-normalised
        signatures seen from it) differ by float64 rounding only and tie under
        :data:`~src.metrics.ties.TIE_RTOL_F64`, where a float32, TF32 or bf16 product could
        round them 1e-7 to 1e-4 apart (``tests/test_ties.py``).

        This default is :meth:`class_distances` computed wholly in float64, whatever the
        training precision: every floating parameter and buffer and the features cast for the
        call (``torch.func.functional_call``; the module itself is untouched), the signatures
        :meth:`exact_class_signatures`, autocast off. Models with an image-side product (the
        metric, the compatibility) override it to keep that product, the expensive N × d one,
        in the training precision and everything that compares classes in float64: an all-zero
        image still projects to exactly zero, and one image's projection is one vector for
        every class, so ties by construction survive."""
        state = {
            name: t.double() if t.is_floating_point() else t
            for name, t in [*self.named_parameters(), *self.named_buffers()]
        }
        state["signatures"] = self.exact_class_signatures()
        with torch.autocast(features.device.type, enabled=False):
            return torch.func.functional_call(self, state, (features.double(),), strict=False)

    @torch.no_grad()
    def score(self, features: Tensor, chunk_rows: int = 4096) -> Tensor:
        """:meth:`exact_distances` of many images, ``chunk_rows`` at a time on the model's
        device; returned on the host (N × C, float64)."""
        chunks = features.split(chunk_rows)
        return torch.cat([self.exact_distances(c.to(self.device)).cpu() for c in chunks])

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        self.gzsl.update(self.exact_distances(batch["features"]), batch["labels"])

    def _eval_epoch_end(self, stage: str) -> None:
        scores = self.gzsl.scores()
        self.gzsl.reset()
        gamma = self.calibration_gamma
        if gamma is None and stage == "val":
            gamma = choose_gamma(scores, gammas=self.gamma_grid)
        values = {f"{stage}/{k}": v for k, v in gzsl_results(scores, gamma).items()}
        shown = {f"{stage}/{k}" for k in PROGRESS_METRICS}
        self.log_dict({k: v for k, v in values.items() if k in shown}, prog_bar=True)
        self.log_dict({k: v for k, v in values.items() if k not in shown})
        if selection := self.selection_metrics():
            self.log_dict(selection)
        self.last_eval = Evaluation(stage, scores, gamma)

    def selection_metrics(self) -> dict[str, float]:
        """What a closed-form model chose on validation as it fitted (e.g. ESZSL's γ, λ),
        logged with every evaluation; none by default."""
        return {}

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int, dataloader_idx: int = 0):
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")


def _is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
