"""aPascal/aYahoo object annotations (Farhadi et al., CVPR 2009) as features, on xlsa17 APY.

``APY/attribute_data/{apascal_train,apascal_test,ayahoo_test}.txt`` hold one object per line,
``image class xmin ymin xmax ymax a1 … a64`` with 0/1 attributes. Concatenated in that order
they are exactly the 15,339 instances of xlsa17's APY, so ``APY/att_splits.mat``'s locs index
them directly, and the per-class means of the annotations are its ``original_att``. Results on
these features are "APY attribute annotations as features", not ResNet-101 numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.data.arrays import DataError, ZSLArrays
from src.data.att_splits import (
    AttSplitsDataModule,
    read_att_splits,
)
from src.data.cache import cached_arrays
from src.data.mat_files import dataset_folder, require_file

ANNOTATION_FILES = ("apascal_train.txt", "apascal_test.txt", "ayahoo_test.txt")
NUM_ATTRIBUTES = 64
# image, class, xmin, ymin, xmax, ymax, then the attributes.
ATTRIBUTE_START = 6


def parse_annotations(paths: Sequence[Path], class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """``features`` (N × 64, float32) and 0-based ``labels`` of the objects in ``paths``."""
    index = {name: i for i, name in enumerate(class_names)}
    columns = ATTRIBUTE_START + NUM_ATTRIBUTES
    labels: list[int] = []
    rows: list[list[float]] = []
    for path in paths:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            fields = line.split()
            if not fields:
                continue
            where = f"{path}, line {number}"
            if len(fields) != columns:
                raise DataError(
                    f"{where}: {len(fields)} columns, expected {columns} (image class xmin ymin "
                    f"xmax ymax a1 … a{NUM_ATTRIBUTES}); replace the file with the original one."
                )
            if fields[1] not in index:
                raise DataError(
                    f"{where}: class '{fields[1]}' is not among the {len(class_names)} "
                    "allclasses_names of APY/att_splits.mat; the annotations and att_splits.mat "
                    "must come from the same releases."
                )
            try:
                rows.append([float(value) for value in fields[ATTRIBUTE_START:]])
            except ValueError as err:
                raise DataError(f"{where}: attributes must be numbers ({err}).") from err
            labels.append(index[fields[1]])
    return {
        "features": np.asarray(rows, dtype=np.float32).reshape(-1, NUM_ATTRIBUTES),
        "labels": np.asarray(labels, dtype=np.int64),
    }


class ApyAnnotationsDataModule(AttSplitsDataModule):
    """``data=apy_annotations``: APY with the 64 annotated object attributes as features.

    Args:
        data_dir: the data root (``ZSL_DATA_DIR``), holding ``APY/att_splits.mat`` and
            ``APY/attribute_data/``.
        cache_dir: where the parsed annotations are cached; ``None`` disables the cache.
        signatures: ``original_att`` (the per-class means of the annotations), ``att`` or
            ``text``; see :class:`~src.data.xlsa17.Xlsa17DataModule`.
        val_split: K of ``trainclassesK.txt``/``valclassesK.txt`` for ``split_mode=val``.
        **kwargs: split options of :class:`~src.data.datamodule.ZSLDataModule`.
    """

    default_signatures = "original_att"

    def load_arrays(self) -> ZSLArrays:
        folder = dataset_folder(self.data_dir, "APY")
        att_path, mat, names = read_att_splits(folder, self.signature_source)
        paths = [require_file(folder / "attribute_data" / name) for name in ANNOTATION_FILES]
        # att_splits.mat is a source too: it maps the class names to label indices.
        raw = cached_arrays(
            self.cache_dir,
            "APY-annotations",
            sources=[*paths, att_path],
            options={"parser": "apy_annotations"},
            build=lambda: parse_annotations(paths, names),
        )
        what = f"objects in {', '.join(ANNOTATION_FILES)}"
        splits, signatures = self.splits_and_signatures(mat, att_path, names, raw["labels"], what)
        return ZSLArrays(
            raw["features"],
            raw["labels"],
            signatures,
            names,
            splits,
            source=f"APY attribute annotations ({folder / 'attribute_data'}, {att_path.name})",
        )
