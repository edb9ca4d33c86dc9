"""What the protocol keeps of every refit and reference: its model and its test predictions.

``<name>.ckpt`` is a checkpoint that ``python -m src.eval ckpt_path=<name>.ckpt`` evaluates as
the protocol did: it records the run's data config (dataset, split mode, fold, seed and the
chosen preprocessing), its dataset identity and, in the model's hyper-parameters, the γ fixed
from validation. ``<name>.npz`` holds the test evaluation's distances (every test image to every
class) with the labels, the class sets, γ and the class names: every metric of the row, and its
bootstrap interval, is recomputed from it (:mod:`src.protocol.report.recompute`). Both are written
whole or not at all (a temporary file renamed over the target), before the JSON that marks the
run as done. Below: which kept files a protocol's row reads (:func:`prediction_files`), read back
as credits, each checked to be scored on the protocol's one test set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.core.atomic import atomic_write
from src.data.arrays import DataError
from src.metrics import GZSLScores
from src.metrics.bootstrap import Credits, credits_from_scores
from src.protocol.settings import ProtocolSettings


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


# ------------------------------------------------- which kept files a protocol's rows read
def search_folders(folder: Path, settings: ProtocolSettings, seed: int) -> list[Path]:
    """The folder of each search (``protocol.searches``): the run folder for search 0 (seed
    ``seed``), ``searches/seed<seed + k>/`` for search k."""
    searches = settings.searches
    return [folder] + [folder / "searches" / f"seed{seed + k}" for k in range(1, searches)]


def prediction_files(
    folder: Path, name: str, kind: str, seeds: Sequence[int], searches: Sequence[Path] = ()
) -> list[Path]:
    """The kept test distances of one row: a reference's file, or one per search (the folders
    ``searches``, default ``folder`` alone) and refit seed, search by search."""
    if kind in ("reference", "untrained") and not (folder / "refit" / name).is_dir():
        return [folder / "references" / f"{name}.npz"]  # evaluated once (no training seeds)
    return [f / "refit" / name / f"seed{int(s)}.npz" for f in (searches or [folder]) for s in seeds]


def _check_present(paths: Sequence[Path]) -> None:
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(
            f"kept test predictions missing: {', '.join(missing)} (a protocol folder written "
            "before they were kept: run the protocol again in a new folder)."
        )


def load_credits(paths: Sequence[Path], keys: dict[Path, str] | None = None) -> list[Credits]:
    """The credits of each kept evaluation; with ``keys``, each file's :func:`test_set_key`
    is recorded there too (for :func:`check_one_test_set`)."""
    _check_present(paths)
    credits = []
    for path in paths:
        scores, gamma, names = load_scores(path)
        if keys is not None:
            keys[path] = test_set_key(scores, names)
        credits.append(credits_from_scores(scores, gamma))
    return credits


def test_set_key(scores: Any, class_names: Sequence[str]) -> str:
    """What a kept evaluation was scored on: the class names, the seen and unseen classes and
    every test image's label (a digest)."""
    import hashlib

    digest = hashlib.sha256("\n".join(class_names).encode())
    for part in (scores.seen_classes, scores.unseen_classes, scores.seen_labels,
                 scores.unseen_labels):  # fmt: skip
        digest.update(np.ascontiguousarray(part.numpy().astype(np.int64)).tobytes())
    return digest.hexdigest()


def odd_test_sets(keys: dict[Path, str]) -> list[Path]:
    """The kept evaluations whose test set is not the one most of them share (a file copied
    in from another run), in the order given."""
    from collections import Counter

    if not keys:
        return []
    common = Counter(keys.values()).most_common(1)[0][0]
    return [path for path, key in keys.items() if key != common]


def check_one_test_set(keys: dict[Path, str]) -> None:
    """Every kept evaluation of a protocol was scored on the same test set, or a
    :class:`~src.protocol.kept.KeptFileError` names the first that was not."""
    if odd := odd_test_sets(keys):
        raise KeptFileError(odd_message(odd[0], len(keys) - len(odd)))


def odd_message(path: Path, others: int) -> str:
    return (
        f"{path}: scored on another test set than the other {others} kept evaluations of this "
        "protocol (other classes or images: copied from another run?); delete it and its .json "
        "to let the protocol refit it."
    )
