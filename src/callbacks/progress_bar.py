"""A rich progress bar that fits 80 columns and stays out of one-off evaluations."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.callbacks.progress.rich_progress import (
    BatchesProcessedColumn,
    CustomBarColumn,
    CustomTimeColumn,
)

#: metrics shown beside the training bar, and their short names
SHOWN = {"val/zsl_acc": "ZSL", "val/gzsl_H": "H"}


class CompactProgressBar(RichProgressBar):
    """:class:`~lightning.pytorch.callbacks.RichProgressBar` on one line of ≤ 80 columns.

    The columns are the description, a ``bar_width``-wide bar, the batch count and the
    elapsed • remaining time (no speed column); beside the training bar, the validation ZSL
    accuracy and H of the last validation, short-named (no ``v_num``). A
    lone ``trainer.validate``/``trainer.test`` (the final evaluation: one batch per loader)
    draws no bar.
    """

    def __init__(self, bar_width: int = 16, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bar_width = bar_width

    @property
    def is_enabled(self) -> bool:
        trainer = getattr(self, "_trainer", None)
        fitting = trainer is None or trainer.state.fn in (None, "fit")
        return super().is_enabled and fitting

    @property
    def is_disabled(self) -> bool:
        return not self.is_enabled

    def configure_columns(self, trainer: Any) -> list:
        from rich.progress import TextColumn

        return [
            TextColumn("[progress.description]{task.description}"),
            CustomBarColumn(
                bar_width=self.bar_width,
                complete_style=self.theme.progress_bar,
                finished_style=self.theme.progress_bar_finished,
                pulse_style=self.theme.progress_bar_pulse,
            ),
            BatchesProcessedColumn(style=self.theme.batch_progress),
            CustomTimeColumn(style=self.theme.time),
        ]

    def get_metrics(self, trainer: Any, pl_module: Any) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        shown = {}
        for key, name in SHOWN.items():
            if key in items and name not in shown:
                value = items[key]
                shown[name] = f"{value:.3f}" if isinstance(value, float) else value
        return shown
