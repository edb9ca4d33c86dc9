"""The shared part of the closed-form references (ESZSL, SAE): no training loop; two of their
own hyper-parameters chosen on a validation grid, then one fit on the run's training images.

A subclass declares its grid (:attr:`ClosedFormClassifier.grid_axes`: the two ``model.*`` lists
it is chosen over, rows then columns), computes it (:meth:`validation_grid`), and fits and scores
(:meth:`fit_choice`, :meth:`class_distances`); the choice, its logging, the checkpointed
selection and ``selection_metrics`` are here. The protocol reads the same declaration to choose
a reference's grid over its folds (:func:`src.protocol.references.grid_choice`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.data.datamodule import ZSLDataModule, ZSLSplit
from src.models.classifier import ZSLClassifier

log = logging.getLogger(__name__)


class ClosedFormClassifier(ZSLClassifier):
    """A closed-form reference whose two own hyper-parameters are chosen on validation.

    Fitted at ``setup`` (any stage) unless already fitted (e.g. restored from a checkpoint):
    with more than one grid cell, the grid is computed on the validation split
    (``datamodule.make_split("val")``: fitted on its training images, scored on its unseen
    ones) and its first maximum wins; then :meth:`fit_choice` fits on the run's own training
    images (trainval in test mode). Test images are never read.
    """

    trainable = False
    #: the model's name in log lines (``ESZSL``)
    title: ClassVar[str]
    #: the two ``model.*`` hyper-parameters of the validation grid: rows, then columns
    grid_axes: ClassVar[tuple[str, str]]

    def save_grid_hyperparameters(
        self, feature_dim: int, signature_dim: int, **axes: list[Any]
    ) -> None:
        """Keep the shapes, the checked grid (``axes``, in the constructor's order) and the
        calibration settings as the hyper-parameters a checkpoint rebuilds the model from."""
        self.save_hyperparameters(
            {
                "feature_dim": feature_dim,
                "signature_dim": signature_dim,
                **axes,
                "calibration_gamma": self.calibration_gamma,
                "gamma_grid": self.gamma_grid,
            }
        )

    def _init_selection(self) -> None:
        """The buffers that keep the choice in a checkpoint (call after the weights')."""
        f64 = torch.float64
        self.register_buffer("fitted", torch.tensor(False))
        self.register_buffer("selection_zsl_acc", torch.tensor(math.nan, dtype=f64))
        self.selection_grid: Tensor | None = None

    @staticmethod
    def validation_grid(
        split: ZSLSplit, signatures: Tensor, rows: Sequence[Any], columns: Sequence[Any]
    ) -> Tensor:
        """Validation ZSL accuracy of every (row, column) value: fitted on ``split.train``,
        ``split.eval["unseen"]`` scored among the split's unseen classes; float64."""
        raise NotImplementedError

    def fit_choice(self, datamodule: ZSLDataModule, row: Any, column: Any) -> None:
        """Fit on ``datamodule``'s training images with the chosen values; record them."""
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if not bool(self.fitted):
            self.fit(self.trainer.datamodule)

    def fit(self, datamodule: ZSLDataModule) -> None:
        """Choose the row and column values on the validation split (if there is a choice),
        then fit."""
        rows, columns = (list(self.hparams[axis]) for axis in self.grid_axes)
        if len(rows) * len(columns) > 1:
            grid = self.validation_grid(
                datamodule.make_split("val"), datamodule.signatures, rows, columns
            )
            i, j = divmod(int(grid.argmax()), len(columns))  # argmax: the first maximum
            row, column, accuracy = rows[i], columns[j], float(grid[i, j])
            self.selection_grid = grid
            log.info(
                "%s validation ZSL accuracy (rows %s, columns %s):\n%s\nchosen %s=%s, %s=%s "
                "(validation ZSL %.4f)",
                self.title, *self.grid_axes, format_grid(grid, rows, columns),
                self.grid_axes[0], row, self.grid_axes[1], column, accuracy,
            )  # fmt: skip
        else:
            row, column, accuracy = rows[0], columns[0], math.nan
            log.info(
                "%s with the only configured %s=%s, %s=%s (no selection).",
                self.title, self.grid_axes[0], row, self.grid_axes[1], column,
            )  # fmt: skip
        self.fit_choice(datamodule, row, column)
        self.fitted.fill_(True)
        self.selection_zsl_acc.fill_(accuracy)

    def chosen_metrics(self) -> dict[str, float]:
        """``val/<name>_<hyper-parameter>`` of the chosen values (numbers)."""
        raise NotImplementedError

    def selection_metrics(self) -> dict[str, float]:
        values = self.chosen_metrics()
        if not math.isnan(float(self.selection_zsl_acc)):
            values["val/selection_zsl_acc"] = float(self.selection_zsl_acc)
        return values

    def check_shape(self, weights: Tensor, buffer: Tensor, name: str, d_axis: int) -> None:
        """Refuse weights fitted on data of other dimensions than the model was built for."""
        if weights.shape != buffer.shape:
            k_axis = 1 - d_axis
            raise ValueError(
                f"model={name} was built for feature_dim={buffer.shape[d_axis]}, signature_dim="
                f"{buffer.shape[k_axis]}, but the data gives {weights.shape[d_axis]}, "
                f"{weights.shape[k_axis]}."
            )


def format_grid(grid: Tensor, rows: Sequence[Any], columns: Sequence[Any]) -> str:
    """The grid as a text table: one line per row value, one column per column value."""

    def shown(value: Any) -> str:
        return f"{value:.0e}" if isinstance(value, float) else str(value)

    width = max(9, *(len(shown(r)) + 1 for r in rows))
    header = " " * width + " ".join(f"{shown(c):>8}" for c in columns)
    lines = [
        f"{shown(r):<{width}}" + " ".join(f"{float(v):>8.4f}" for v in grid[i])
        for i, r in enumerate(rows)
    ]
    return "\n".join([header, *lines])


def positive_values(key: str, values: Sequence[float] | float) -> list[float]:
    """A grid of ``model.<key>``: a non-empty list of numbers > 0, or one line naming it."""
    values = [values] if isinstance(values, int | float) else list(values)
    if not values or any(not float(v) > 0 for v in values):
        raise ValueError(f"{key}={values} is invalid: it must be a non-empty list of values > 0.")
    return [float(v) for v in values]
