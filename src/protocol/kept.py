"""What the protocol keeps of every refit and reference: its model and its test predictions.

``<name>.ckpt`` is a checkpoint that ``python -m src.eval ckpt_path=<name>.ckpt`` evaluates as
the protocol did: it records the run's data config (dataset, split mode, fold, seed and the
chosen preprocessing), its dataset identity and, in the model's hyper-parameters, the γ fixed
from validation. ``<name>.npz`` holds the test evaluation's distances (every test image to every
class) with the labels, the class sets, γ and the class names: every metric of the row, and its
bootstrap interval, is recomputed from it (:mod:`src.protocol.report.recompute`). Both are written
whole or not at all (a temporary file renamed over the target), before the JSON that marks the
run as done.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.core.atomic import atomic_write
from src.data.arrays import DataError
from src.metrics import GZSLScores


class KeptFileError(DataError):
    """A kept evaluation (``<name>.npz``) that is truncated, unreadable or not one: one line."""


def save_run(keep: Path, trainer: Any, model: Any, datamodule: Any) -> None:
    """``<keep>.npz`` (the last evaluation's distances, γ, class names) and ``<keep>.ckpt``."""
    from src.callbacks.run_record import RunRecord
    from src.runs.checkpoints import dataset_identity

    evaluation = model.last_eval
    save_scores(keep.with_suffix(".npz"), evaluation.scores, evaluation.gamma,
                datamodule.class_names)  # fmt: skip
    config = {"data": datamodule.kept_config, "task_name": "protocol"}
    record = RunRecord(config, dataset_identity(datamodule), str(keep.parent))
    trainer.callbacks.append(record)
    try:
        atomic_write(keep.with_suffix(".ckpt"), lambda tmp: trainer.save_checkpoint(tmp))
    finally:
        trainer.callbacks.remove(record)


def save_scores(path: Path, scores: GZSLScores, gamma: float | None, class_names) -> None:
    arrays = {f.name: getattr(scores, f.name).cpu().numpy() for f in fields(scores)}
    arrays["gamma"] = np.array(np.nan if gamma is None else float(gamma))
    arrays["class_names"] = np.array([str(n) for n in class_names])

    def write(tmp: Path) -> None:
        with tmp.open("wb") as f:  # a file object: savez would add ".npz" to a name
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def load_scores(path: Path) -> tuple[GZSLScores, float | None, list[str]]:
    """The evaluation saved by :func:`save_scores`: (scores, γ or ``None``, class names).

    A truncated, unreadable or foreign file raises :class:`KeptFileError` naming it (a file
    copied half-way between machines is the usual cause), never a ``zipfile`` traceback."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            scores = GZSLScores(*(torch.from_numpy(data[f.name]) for f in fields(GZSLScores)))
            gamma = float(data["gamma"])
            names = [str(n) for n in data["class_names"]]
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, TypeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise KeptFileError(
            f"{path}: damaged or not a kept evaluation ({type(error).__name__}: {reason}); copy "
            "it again whole, or delete it and its .json to let the protocol refit it."
        ) from None
    return scores, (None if np.isnan(gamma) else gamma), names
