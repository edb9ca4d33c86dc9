"""Checkpoints that survive a kill, name their dataset and run, and are checked before use.

- :class:`AtomicCheckpointIO` writes every checkpoint to a temporary file *in the target folder*,
  flushes it to disk and renames it over the target: at any moment the target is the previous
  complete checkpoint or the new complete one, on every filesystem (Lightning's default goes
  through a temporary file in the system temp folder, which is a copy, not a rename, when the
  outputs live on another filesystem).
- :func:`read_checkpoint` loads one with a one-line error for a missing or damaged file, and
  :func:`newest_valid_checkpoint` finds the newest readable one of a run. Both read through
  :func:`restricted_load`: torch's restricted unpickler (``weights_only=True``), which
  reconstructs tensors, containers and numbers only; a file that holds an object of any other
  type is refused, naming the types, and that object is never built (unpickling an arbitrary
  class runs its code). Every checkpoint the framework writes holds plain types only, and
  Lightning's own loads (resume, ``load_from_checkpoint``) are given ``weights_only=True``
  (:data:`RESTRICTED`).
- :func:`dataset_identity` is the dataset's name and a hash of its content (class names,
  features, labels, signatures, split indices); every training checkpoint records it
  (:class:`~src.callbacks.RunRecord`), and resuming or evaluating on other data is refused,
  naming the parts that differ (:func:`check_same_dataset`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import pickle
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from src.core.atomic import atomic_write

log = logging.getLogger(__name__)

#: checkpoint key of the run record: resolved config, dataset identity, output folder
RUN_KEY = "zsl_run"
#: GBU splits present in every split mode (their sizes enter the dataset hash)
IDENTITY_SPLITS = ("trainval", "test_seen", "test_unseen")


#: what the framework passes to Lightning's checkpoint loads (``Trainer.fit(ckpt_path=…)``,
#: ``validate``, ``load_from_checkpoint``): torch's restricted unpickler, never the full one
RESTRICTED = {"weights_only": True}


class CheckpointError(ValueError):
    """A checkpoint cannot be used: damaged, of another dataset, or of other settings."""


class ForeignTypesError(CheckpointError):
    """A checkpoint holds objects of types the restricted unpickler does not build."""


def restricted_load(path: str | Path, key: str = "ckpt_path") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU.

    Raises:
        ForeignTypesError: the file holds objects of other types than tensors, containers and
            numbers, named in the message; none of them was reconstructed.
        Exception: whatever torch raises for an unreadable file (see :func:`read_checkpoint`).
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        types = _foreign_types(path)
        if not types:  # not a torch.save archive, or a damaged one: the caller names it
            raise
        raise ForeignTypesError(
            f"{key}={path} holds objects of types that no checkpoint of this framework holds "
            f"({', '.join(types)}): "
            "refused without building them, since unpickling an object runs its class's code. "
            "Use a checkpoint written by src.train or src.protocol, or re-save this one's "
            "weights as plain tensors (torch.save({'state_dict': ...}))."
        ) from None


def _foreign_types(path: str | Path) -> list[str]:
    """The classes and functions a torch file names that the restricted unpickler refuses."""
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        return []


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into ``<folder>/.<name>.<random>.tmp``, flush and fsync, then rename over
    ``<folder>/<name>`` (``os.replace``: atomic within a filesystem). Remote URLs (``s3://``…)
    keep Lightning's own transaction."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, Path(path))


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj, path)`` that never leaves ``path`` partly written."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)  # serialise first: a failure here leaves no file at all
    atomic_write(Path(path), lambda tmp: tmp.write_bytes(buffer.getbuffer()))


def read_checkpoint(path: str | Path, key: str = "ckpt_path") -> dict[str, Any]:
    """Load a checkpoint on the CPU.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file is not a readable Lightning checkpoint (e.g. truncated by a
            kill during a save by an older version), naming the valid checkpoints beside it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}={path}: no such checkpoint file.")
    try:
        checkpoint = restricted_load(path, key)
    except ForeignTypesError:
        raise
    except Exception as error:  # truncated zip, pickle error, empty file...
        raise CheckpointError(
            f"{key}={path} is not a readable checkpoint ({_unreadable(path, error)}). "
            f"{_alternatives(path)}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{key}={path} is not a Lightning checkpoint (no state_dict).")
    return checkpoint


def _unreadable(path: Path, error: Exception) -> str:
    """Why ``path`` is not a checkpoint, in words: empty, not a torch file, or cut short."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    with path.open("rb") as f:
        head = f.read(4)
    if head != b"PK\x03\x04":  # torch.save writes a zip archive
        return (
            f"{size} bytes that are not a torch.save archive: not a checkpoint file; "
            "give a .ckpt written by a run (checkpoints/last.ckpt)"
        )
    reason = " ".join(f"{type(error).__name__}: {error}".split()).rstrip(":")
    return f"{size} bytes; {reason}; it was probably cut short by a kill during a save"


def _alternatives(path: Path) -> str:
    found = newest_valid_checkpoint(path.parent, exclude=path)
    if found is None:
        return "No other valid checkpoint lies beside it."
    other, checkpoint = found
    return f"A valid one lies beside it: {other} (epoch {checkpoint.get('epoch')})."


def newest_valid_checkpoint(
    folder: str | Path, exclude: Path | None = None
) -> tuple[Path, dict[str, Any]] | None:
    """The readable ``*.ckpt`` of ``folder`` with the most training (epoch, then step), with
    ``last.ckpt`` first among equals; ``None`` when there is none."""
    best: tuple[tuple, Path, dict] | None = None
    for path in sorted(Path(folder).glob("*.ckpt")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        try:
            checkpoint = restricted_load(path)
        except Exception:  # damaged, or holding foreign types: never a checkpoint to use
            continue
        if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
            continue
        rank = (checkpoint.get("epoch", -1), checkpoint.get("global_step", -1), path.stem == "last")
        if best is None or rank > best[0]:
            best = (rank, path, checkpoint)
    return None if best is None else (best[1], best[2])


def checkpoint_to_resume(folder: str | Path) -> str | None:
    """The checkpoint an interrupted job continues from: ``last.ckpt``, or, when that one is
    damaged or missing, the newest valid checkpoint of the job (saying so); ``None`` if none."""
    folder = Path(folder)
    last = folder / "last.ckpt"
    if last.is_file():
        try:
            read_checkpoint(last)
            return str(last)
        except CheckpointError as error:
            found = newest_valid_checkpoint(folder, exclude=last)
            if found is None:
                log.warning("%s No checkpoint to continue from: the job starts again.", error)
                return None
            path, checkpoint = found
            log.warning(
                "resume_sweep: %s is damaged (%d bytes); continuing from the newest valid "
                "checkpoint instead: %s (epoch %s).",
                last,
                last.stat().st_size,
                path,
                checkpoint.get("epoch"),
            )
            return str(path)
    found = newest_valid_checkpoint(folder)
    return None if found is None else str(found[0])


def dataset_identity(datamodule: Any) -> dict[str, Any]:
    """``{"name", "hash", "parts", "sizes_hash"}`` of a set-up datamodule: the dataset's name
    (its source without the file paths, e.g. ``AWA2`` or ``synthetic(seed=0)``), a hash of its
    content (class names, features, labels, signatures and split indices), that hash per part
    (:meth:`~src.data.arrays.ZSLArrays.fingerprint`), and the hash of its class names and GBU
    split sizes alone (what checkpoints of older versions record as ``hash``)."""
    arrays = datamodule.arrays
    name = str(arrays.source).split(" (")[0]
    parts = arrays.fingerprint()
    content = json.dumps(parts, sort_keys=True)
    return {
        "name": name,
        "hash": hashlib.sha256(content.encode()).hexdigest()[:12],
        "parts": parts,
        "sizes_hash": _sizes_hash(arrays),
    }


def _sizes_hash(arrays: Any) -> str:
    sizes = {k: len(arrays.splits[k]) for k in IDENTITY_SPLITS if k in arrays.splits}
    payload = json.dumps({"classes": list(arrays.class_names), "splits": sizes}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def describe_dataset(identity: dict[str, Any]) -> str:
    return f"{identity.get('name')} [{identity.get('hash')}]"


def check_same_dataset(
    checkpoint: dict[str, Any], identity: dict[str, Any], ckpt_path: Any, action: str
) -> None:
    """Refuse to ``action`` (resume, evaluate) a checkpoint on data other than its own: another
    dataset, or the same one with other content (naming the parts that differ)."""
    record = checkpoint.get(RUN_KEY) or {}
    saved = record.get("dataset")
    if not saved:
        log.warning(
            "ckpt_path=%s records no dataset identity (saved by an older version): cannot check "
            "that it was trained on %s.",
            ckpt_path,
            describe_dataset(identity),
        )
        return
    if saved.get("name") != identity["name"]:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained on {describe_dataset(saved)}, but the configured "
            f"data is {describe_dataset(identity)}: refusing to {action} it on another dataset; "
            "choose the checkpoint's data."
        )
    parts = saved.get("parts")
    if not isinstance(parts, dict):  # an older checkpoint: class names and split sizes only
        if saved.get("hash") != identity["sizes_hash"]:
            raise CheckpointError(
                f"ckpt_path={ckpt_path} was trained on {saved.get('name')} with other class "
                f"names or split sizes than the configured data: refusing to {action} it on "
                "other data; choose the checkpoint's data."
            )
        log.warning(
            "ckpt_path=%s records its dataset's class names and split sizes only (saved by an "
            "older version): cannot check that its features, signatures and splits are these.",
            ckpt_path,
        )
        return
    differ = [
        k
        for k in sorted(set(parts) | set(identity["parts"]))
        if parts.get(k) != identity["parts"].get(k)
    ]
    if differ:
        raise CheckpointError(
            f"ckpt_path={ckpt_path} was trained on {describe_dataset(saved)}, but the configured "
            f"data {identity['name']} has other {', '.join(differ)} "
            f"[{describe_dataset(identity)}]: refusing to {action} it on other data; choose "
            "the checkpoint's data (its files, data.* options and generator seed)."
        )
