"""Which images form each split of a zero-shot dataset, and the tensors of one split.

``split_mode="test"`` trains on ``trainval`` and evaluates on ``test_seen`` (seen) and
``test_unseen`` (unseen). ``split_mode="val"`` trains on the ``train`` classes less a seeded
``val_seen_fraction`` of each class's images, held out as the seen evaluation images; the
``val`` classes are the unseen ones. Features are standardised with statistics of training
images only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from src.data.arrays import DataError, ZSLArrays
from src.data.batches import IndexedImages


@dataclass
class ZSLSplit:
    """Training and evaluation images of one split mode, with its seen and unseen classes."""

    train: IndexedImages
    eval: dict[str, IndexedImages]  # "unseen" and "seen" evaluation images
    seen_classes: Tensor
    unseen_classes: Tensor


def split_indices(
    arrays: ZSLArrays, split_mode: str, val_seen_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(training images, seen evaluation images, unseen evaluation images) of ``split_mode``."""
    if split_mode == "test":
        needed = ("trainval", "test_seen", "test_unseen")
    else:
        needed = ("train", "val")
    missing = [s for s in needed if s not in arrays.splits]
    if missing:
        raise DataError(
            f"{arrays.source}: split_mode={split_mode} needs the splits {missing}, "
            "which this dataset does not provide."
        )
    if split_mode == "test":
        s = arrays.splits
        seen, unseen = arrays.labels[s["trainval"]], arrays.labels[s["test_seen"]]
        stray = np.setdiff1d(unseen, seen)
        if stray.size:
            raise DataError(
                f"{arrays.source}: test_seen holds classes absent from trainval "
                f"({[arrays.class_names[c] for c in stray[:5]]})."
            )
        check_seen_classes_evaluated(
            arrays, s["trainval"], s["test_seen"], "'test_seen' holds no image of them"
        )
        return s["trainval"], s["test_seen"], s["test_unseen"]
    train, held_out = hold_out_per_class(
        arrays.splits["train"], arrays.labels, val_seen_fraction, seed
    )
    check_seen_classes_evaluated(
        arrays,
        train,
        held_out,
        f"data.val_seen_fraction={val_seen_fraction} of their 'train' images holds out none "
        f"(a class needs ≥ {math.ceil(1 / val_seen_fraction - 1e-9)} images)",
    )
    return train, held_out, arrays.splits["val"]


def check_seen_classes_evaluated(
    arrays: ZSLArrays, train: np.ndarray, seen_eval: np.ndarray, why: str
) -> None:
    """Every seen (training) class has seen evaluation images: the GZSL seen accuracy is a mean
    over the seen classes, undefined for a class without any."""
    missing = np.setdiff1d(arrays.labels[train], arrays.labels[seen_eval])
    if missing.size:
        raise DataError(
            f"{arrays.source}: {missing.size} seen classes have no seen evaluation image "
            f"({arrays.quoted_classes(missing)}): {why}; their per-class accuracy would be "
            "undefined. Give each seen class evaluation images, or leave the class out of the "
            "dataset."
        )


def hold_out_per_class(
    idx: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, ...]:
    """Split ``idx`` per class into (kept, held out ``fraction``), seeded."""
    rng = np.random.default_rng(seed)
    order = idx[rng.permutation(len(idx))]
    rank_in_class = np.empty(len(order), dtype=np.int64)
    cls = labels[order]
    for c in np.unique(cls):
        rank_in_class[cls == c] = np.arange((cls == c).sum())
    counts = np.bincount(cls)[cls]
    held = rank_in_class < np.floor(counts * fraction).astype(np.int64)
    return np.sort(order[~held]), np.sort(order[held])


def build_split(
    arrays: ZSLArrays,
    indices: tuple[np.ndarray, np.ndarray, np.ndarray],
    fit_idx: np.ndarray | None,
    l2_features: bool,
) -> ZSLSplit:
    """The images of ``indices`` (training, seen, unseen) as tensors: features standardised per
    dimension with the statistics of the ``fit_idx`` images (``None``: not standardised), then
    L2-normalised when ``l2_features``."""
    train_idx, seen_idx, unseen_idx = indices
    features = torch.as_tensor(arrays.features, dtype=torch.float32)
    if fit_idx is not None:
        train = features[fit_idx]
        std = train.std(0)
        features = (features - train.mean(0)) / torch.where(std > 0, std, torch.ones_like(std))
    if l2_features:
        features = torch.nn.functional.normalize(features, dim=1)
    labels = torch.as_tensor(arrays.labels)
    return ZSLSplit(
        train=IndexedImages(features[train_idx], labels[train_idx]),
        eval={
            "unseen": IndexedImages(features[unseen_idx], labels[unseen_idx]),
            "seen": IndexedImages(features[seen_idx], labels[seen_idx]),
        },
        seen_classes=labels[train_idx].unique(),
        unseen_classes=labels[unseen_idx].unique(),
    )
