"""The xlsa17 benchmarks (AWA1, AWA2, CUB, SUN, APY) of Xian et al. ("the Good, the Bad, the Ugly").

A dataset folder holds ``att_splits.mat`` (class names, signatures, 1-based split indices) and a
feature file such as ``res101.mat`` (``features`` d × N or N × d, ``labels`` N × 1, 1-based).
``att_splits.mat`` is read by :mod:`src.data.att_splits`, shared with
:mod:`src.data.apy_annotations`; this module reads the features and builds the data module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from src.data.arrays import DataError, ZSLArrays
from src.data.att_splits import (
    AttSplitsDataModule,
    read_att_splits,
)
from src.data.cache import cached_arrays, known_digests
from src.data.mat_files import dataset_folder, load_mat, one_based_indices, require_file


def read_features(path: Path) -> dict[str, np.ndarray]:
    """``features`` as N × d float32 and the raw ``labels`` of a res101.mat-style file.

    The release stores d × N; N × d is accepted too. The orientation is the one whose image
    axis matches the number of labels (d × N when both do).
    """
    mat = load_mat(path, ("features", "labels"))
    labels = np.asarray(mat["labels"]).reshape(-1)
    features = np.asarray(mat["features"])
    if features.ndim != 2:
        raise DataError(f"{path}: 'features' must be a 2-D array, got shape {features.shape}.")
    if features.shape[1] == len(labels):
        features = features.T
    elif features.shape[0] != len(labels):
        raise DataError(
            f"{path}: 'features' has shape {features.shape} but 'labels' has {len(labels)} "
            "entries; they must describe the same images (features d × N or N × d)."
        )
    return {"features": np.ascontiguousarray(features, dtype=np.float32), "labels": labels}


class Xlsa17DataModule(AttSplitsDataModule):
    """``data=awa1|awa2|cub|sun|apy``: an xlsa17 benchmark with its image features.

    Args:
        dataset: folder of the dataset under ``data_dir`` (``AWA1``, ``AWA2``, ``CUB``, ``SUN``,
            ``APY``).
        data_dir: the data root (``ZSL_DATA_DIR``).
        cache_dir: where parsed features are cached; ``None`` disables the cache.
        feature_file: the feature file, relative to the dataset folder (or absolute).
        signatures: ``att`` (the release's normalised signatures), ``original_att`` (raw
            attributes; AWA's −1 "missing" values become the attribute's mean over the classes
            where it is known) or ``text`` (class-name embeddings, see
            :mod:`src.data.text_signatures`).
        val_split: K of ``trainclassesK.txt``/``valclassesK.txt`` for ``split_mode=val``.
        **kwargs: split options of :class:`~src.data.datamodule.ZSLDataModule`.
    """

    def __init__(self, dataset: str, feature_file: str = "res101.mat", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.dataset, self.feature_file = dataset, feature_file

    def load_arrays(self) -> ZSLArrays:
        folder = dataset_folder(self.data_dir, self.dataset)
        att_path, mat, names = read_att_splits(folder, self.signature_source)
        feature_path = require_file(folder / self.feature_file)
        raw = cached_arrays(
            self.cache_dir,
            f"{self.dataset}-{feature_path.stem}",
            sources=[feature_path],
            options={"parser": "xlsa17_features"},
            build=lambda: read_features(feature_path),
            digests=("features",),
        )
        labels = one_based_indices(
            raw["labels"], feature_path, "labels", len(names), f"classes in {att_path}"
        )
        what = f"images in {feature_path}"
        splits, signatures = self.splits_and_signatures(mat, att_path, names, labels, what)
        if self.signature_source == "clip":
            from src.data.clip_signatures import shares_space

            # CLIP image features and CLIP text signatures of one model: one space (W = I
            # starts from CLIP's zero-shot classifier); other features: text embeddings
            self.signature_kind = "clip" if shares_space(feature_path, self.clip) else "text"
        return ZSLArrays(
            raw["features"],
            labels,
            signatures,
            names,
            splits,
            source=f"{self.dataset} ({feature_path}, {att_path.name})",
            known_digests=known_digests(raw),
        )
