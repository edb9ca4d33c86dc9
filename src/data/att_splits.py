"""Reading ``att_splits.mat`` of the xlsa17 release: class names, signatures, split indices.

Shared by :mod:`src.data.xlsa17` (CNN features) and :mod:`src.data.apy_annotations`
(annotations as features). The file holds the class names, the signatures (``att``: the
release's normalised ones, ``original_att``: raw attributes, both k × C) and the 1-based image
indices of the GBU splits (``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc``); validation
split K comes from the file's ``train_loc``/``val_loc`` (K = 1) or from
``trainclassesK.txt``/``valclassesK.txt`` beside it, and never holds a test image.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from src.data.arrays import DataError, check_unique_names
from src.data.datamodule import ZSLDataModule
from src.data.mat_files import (
    cell_strings,
    check_class_columns,
    class_indices,
    load_mat,
    one_based_indices,
)
from src.data.text_signatures import text_signatures

log = logging.getLogger(__name__)

SIGNATURES = ("att", "original_att", "text", "clip")
#: signatures computed from the class names, not read from the file
EMBEDDINGS = ("text", "clip")
VAL_SPLITS = (1, 2, 3)
GBU_KEYS = ("trainval_loc", "test_seen_loc", "test_unseen_loc")


def check_options(signatures: str, val_split: int) -> None:
    """Reject invalid ``data.signatures`` / ``data.val_split`` values before any file is read."""
    if signatures not in SIGNATURES:
        raise ValueError(f"data.signatures='{signatures}' is invalid: use one of {SIGNATURES}.")
    if val_split not in VAL_SPLITS:
        raise ValueError(f"data.val_split={val_split} is invalid: use one of {VAL_SPLITS}.")


class AttSplitsDataModule(ZSLDataModule):
    """What the datamodules of an ``att_splits.mat`` folder share (xlsa17, the APY annotations):
    where the files are, the signatures (and their kind), the validation split and the CLIP
    settings, checked before any file is read.

    Args:
        data_dir: the data root (``ZSL_DATA_DIR``).
        cache_dir: where parsed arrays are cached; ``None`` disables the cache.
        signatures: one of :data:`SIGNATURES`; ``None``: the subclass's
            :attr:`default_signatures`.
        val_split: K of ``trainclassesK.txt``/``valclassesK.txt`` for ``split_mode=val``.
        clip: the open_clip settings of ``signatures=clip``.
        **kwargs: split options of :class:`~src.data.datamodule.ZSLDataModule`.
    """

    default_signatures: ClassVar[str] = "att"

    def __init__(
        self,
        data_dir: str | None = None,
        cache_dir: str | None = None,
        signatures: str | None = None,
        val_split: int = 1,
        clip: dict | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        signatures = self.default_signatures if signatures is None else signatures
        check_options(signatures, val_split)
        self.data_dir, self.cache_dir = data_dir, cache_dir
        self.signature_source, self.val_split = signatures, val_split
        self.signature_kind = "text" if signatures in EMBEDDINGS else "attributes"
        self.clip = dict(clip) if clip else None

    def splits_and_signatures(
        self, mat: Mapping, att_path: Path, names: list[str], labels: np.ndarray, what: str
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The GBU splits of ``labels`` (``what``: the images, in messages), with the validation
        splits (also read in test mode when present: closed-form baselines select on
        validation), and the class signatures."""
        splits = gbu_splits(mat, att_path, len(labels), what)
        if self.split_mode == "val" or has_validation_split(mat, att_path, self.val_split):
            splits |= validation_splits(
                mat, att_path, names, self.val_split, labels, splits["trainval"], what
            )
        signatures = class_signatures(
            mat, att_path, self.signature_source, names, self.cache_dir, self.clip
        )
        return splits, signatures


def read_att_splits(folder: Path, signatures: str) -> tuple[Path, dict, list[str]]:
    """(path, contents, class names) of ``folder/att_splits.mat``, with the keys we need."""
    path = folder / "att_splits.mat"
    keys = ["allclasses_names", *GBU_KEYS] + ([] if signatures in EMBEDDINGS else [signatures])
    mat = load_mat(path, keys)
    names = cell_strings(mat, path, "allclasses_names")
    check_unique_names(names, f"{path}: allclasses_names")
    if signatures not in EMBEDDINGS:  # before the labels are checked against the names
        check_class_columns(mat, path, signatures, len(names))
    return path, mat, names


def fill_missing_attributes(values: np.ndarray) -> np.ndarray:
    """Replace AWA's −1 ("missing") in ``original_att`` (k × C) by the attribute's class mean.

    The mean runs over the classes where the attribute is known, so that a missing value reads
    as "typical" rather than as "absent" (0) or as an impossible negative strength.
    """
    missing = values == -1
    if not missing.any():
        return values
    means = np.nanmean(np.where(missing, np.nan, values), axis=1, keepdims=True)
    return np.where(missing, means, values)


def class_signatures(
    mat: dict,
    path: Path,
    kind: str,
    class_names: Sequence[str],
    cache_dir: str | Path | None,
    clip: Mapping | None = None,
) -> np.ndarray:
    """C × k signatures: ``att`` or ``original_att`` (k × C in the file), or embeddings of the
    class names: ``text`` (all-MiniLM-L6-v2) or ``clip`` (an open_clip text tower, ``clip``
    its options: :mod:`src.data.clip_signatures`)."""
    if kind == "text":
        return text_signatures(class_names, cache_dir)
    if kind == "clip":
        from src.data.clip_signatures import clip_signatures

        return clip_signatures(class_names, cache_dir, clip)
    values = np.asarray(mat[kind], dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"{path}: key '{kind}' must be a k × C matrix, got shape {values.shape}.")
    if kind == "original_att":
        values = fill_missing_attributes(values)
    return values.T


def gbu_splits(mat: dict, path: Path, num_images: int, what: str) -> dict[str, np.ndarray]:
    """0-based ``trainval``, ``test_seen`` and ``test_unseen`` image indices."""
    return {
        key.removesuffix("_loc"): one_based_indices(mat[key], path, key, num_images, what)
        for key in GBU_KEYS
    }


def has_validation_split(mat: dict, path: Path, val_split: int) -> bool:
    """Whether validation split K can be built: locs in the file (K = 1) or both class lists."""
    if val_split == 1 and "train_loc" in mat and "val_loc" in mat:
        return True
    return all((path.parent / f"{p}classes{val_split}.txt").is_file() for p in ("train", "val"))


def file_validation_splits(
    mat: dict, path: Path, num_images: int, trainval: np.ndarray, what: str
) -> dict[str, np.ndarray]:
    """0-based ``train`` and ``val`` from the file's ``train_loc``/``val_loc``, within trainval.

    The release's ``train_loc``/``val_loc`` of AWA1, AWA2 and SUN are not a partition of
    ``trainval_loc``: together they also hold every ``test_seen_loc`` image. Those images are
    dropped (keeping the file's order), and the drop is logged once, so that validation and
    everything selected on it never see a test image. Raises :class:`DataError` when a part is
    empty afterwards or when train and val share an image.
    """
    locs = {
        part: one_based_indices(mat[f"{part}_loc"], path, f"{part}_loc", num_images, what)
        for part in ("train", "val")
    }
    splits = {part: idx[np.isin(idx, trainval)] for part, idx in locs.items()}
    dropped = {part: locs[part][~np.isin(locs[part], trainval)] for part in locs}
    if any(d.size for d in dropped.values()):
        all_dropped = np.concatenate(list(dropped.values()))
        test_seen = np.asarray(mat.get("test_seen_loc", []), dtype=np.int64).reshape(-1) - 1
        in_test_seen = int(np.isin(all_dropped, test_seen).sum())
        log.info(
            "%s: dropped %d of %d train_loc and %d of %d val_loc images that are not in "
            "trainval_loc (%d of them are test_seen_loc images), so that validation never sees "
            "a test image.",
            path,
            dropped["train"].size,
            locs["train"].size,
            dropped["val"].size,
            locs["val"].size,
            in_test_seen,
        )
    for part, idx in splits.items():
        if idx.size == 0:
            raise DataError(
                f"{path}: key '{part}_loc' holds no trainval_loc image ({locs[part].size} "
                "listed, all outside trainval_loc); replace the file with the original release."
            )
    shared = np.intersect1d(splits["train"], splits["val"])
    if shared.size:
        raise DataError(
            f"{path}: keys 'train_loc' and 'val_loc' share {shared.size} images "
            f"(e.g. {shared[0] + 1}, 1-based); train and val must be disjoint."
        )
    return splits


def validation_splits(
    mat: dict,
    path: Path,
    class_names: Sequence[str],
    val_split: int,
    labels: np.ndarray,
    trainval: np.ndarray,
    what: str,
) -> dict[str, np.ndarray]:
    """0-based ``train`` and ``val`` image indices of validation split ``val_split`` (K).

    Both parts only ever hold ``trainval`` images. K = 1 uses the file's own
    ``train_loc``/``val_loc`` when it has them (AWA1, AWA2 and SUN do), less their images outside
    ``trainval_loc`` (in the release, the ``test_seen`` images of their classes; see
    :func:`file_validation_splits`). Otherwise the split is rebuilt from
    ``trainclassesK.txt``/``valclassesK.txt`` beside the file: the ``trainval`` images whose
    class is listed.
    """
    if val_split == 1 and "train_loc" in mat and "val_loc" in mat:
        return file_validation_splits(mat, path, len(labels), trainval, what)
    splits = {}
    for part in ("train", "val"):
        list_path = path.parent / f"{part}classes{val_split}.txt"
        # Only trainval images: a class list never brings in a test image.
        listed = trainval[np.isin(labels[trainval], class_indices(list_path, class_names))]
        if listed.size == 0:
            raise DataError(
                f"{list_path}: no trainval_loc image of {path} belongs to the listed classes; "
                "the class list and att_splits.mat must come from the same release."
            )
        splits[part] = listed
    return splits
