"""``csv/metrics.csv`` that keeps a run's whole history across resumes.

Lightning's CSVLogger deletes an existing ``metrics.csv`` when it starts ("Previous log files in
this directory will be deleted"), so a job resumed in its own folder lost every epoch before the
interruption, and a run resumed from another run's checkpoint started its file at the resumed
epoch. :class:`HistoryCSVLogger` keeps the file, and :func:`history_rows` gives the rows a resumed
run starts from: those of the checkpoint's own run up to the checkpoint (its epoch and step), so
the new ``metrics.csv`` holds every epoch once, wherever the new outputs go.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter
from lightning.pytorch.loggers.logger import rank_zero_experiment

from src.core.atomic import write_csv
from src.core.errors import one_line
from src.data.arrays import DataError
from src.runs.checkpoints import RUN_KEY

log = logging.getLogger(__name__)


class _KeepingWriter(ExperimentWriter):
    """Appends to an existing ``metrics.csv`` (its header becomes the known columns)."""

    def _check_log_dir_exists(self) -> None:
        if not os.path.isfile(self.metrics_file_path):
            return
        with open(self.metrics_file_path, newline="") as f:
            header = next(csv.reader(f), [])
        self.metrics_keys = list(header)


class HistoryCSVLogger(CSVLogger):
    """A CSVLogger that never deletes the rows already in its ``metrics.csv``.

    :meth:`start` sets the file's content before training: the history of the run being
    continued, or nothing for a run that starts at epoch 0 (an earlier file is then kept as
    ``metrics-<n>.csv``, never deleted).
    """

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is not None:
            return self._experiment
        os.makedirs(self.root_dir, exist_ok=True)
        self._experiment = _KeepingWriter(log_dir=self.log_dir)
        return self._experiment

    @property
    def metrics_file(self) -> Path:
        return Path(self.log_dir) / ExperimentWriter.NAME_METRICS_FILE

    def start(self, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` as the file's first rows (an empty list: start a new file)."""
        if self._experiment is not None:
            raise RuntimeError("HistoryCSVLogger.start must be called before logging.")
        path = self.metrics_file
        if not rows:
            if path.is_file():
                kept = _free_name(path)
                path.rename(kept)
                log.info("Earlier metrics of this folder kept as %s", kept)
            return
        write_rows(path, rows)


def _free_name(path: Path) -> Path:
    n = 1
    while (candidate := path.with_name(f"{path.stem}-{n}{path.suffix}")).exists():
        n += 1
    return candidate


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write CSV rows (sorted columns, as Lightning writes them) atomically."""
    write_csv(path, sorted({key for row in rows for key in row}), rows)


def history_source(checkpoint: dict[str, Any], ckpt_path: str | Path) -> Path:
    """The ``metrics.csv`` of the run that wrote ``checkpoint``: its recorded output folder, or
    the folder above ``checkpoints/``."""
    record = checkpoint.get(RUN_KEY) or {}
    recorded = record.get("output_dir")
    if recorded and (Path(recorded) / "csv" / "metrics.csv").is_file():
        return Path(recorded) / "csv" / "metrics.csv"
    return Path(ckpt_path).resolve().parent.parent / "csv" / "metrics.csv"


def history_rows(checkpoint: dict[str, Any], ckpt_path: str | Path) -> list[dict[str, str]]:
    """Rows of the checkpoint's run up to the checkpoint: epoch ≤ its epoch, step ≤ its step.

    Rows logged after the checkpoint (a later epoch finished before a kill, or the final test
    of a finished run) are left out: the resumed run logs them again from the same state.
    """
    source = history_source(checkpoint, ckpt_path)
    if not source.is_file():
        log.warning(
            "No metrics history at %s: csv/metrics.csv of this run starts at the resumed epoch.",
            source,
        )
        return []
    epoch, step = int(checkpoint.get("epoch", -1)), int(checkpoint.get("global_step", -1))
    try:
        with source.open(newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            columns = set(reader.fieldnames or ())
        if rows and not {"epoch", "step"} <= columns:
            raise ValueError("no epoch and step columns")
    except (UnicodeDecodeError, csv.Error, ValueError) as error:
        raise DataError(
            f"{source} cannot be read as the run's metrics history ({one_line(error)[:120]}): "
            "it was damaged. Restore it from a copy, or move it away to resume with a history "
            "that starts at the resumed epoch."
        ) from None

    def before(row: dict[str, str]) -> bool:
        try:
            return int(row.get("epoch") or 0) <= epoch and int(row.get("step") or 0) <= step
        except ValueError:
            return False

    kept = [{k: v for k, v in row.items() if v not in (None, "")} for row in rows if before(row)]
    log.info(
        "Continuing the metrics history of %s: %d of its %d rows (up to epoch %d).",
        source,
        len(kept),
        len(rows),
        epoch,
    )
    return kept
