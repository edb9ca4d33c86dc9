"""Validation splits never hold a test image (real xlsa17 files, then a hand-made mat dict).

The release's ``train_loc``/``val_loc`` of AWA1, AWA2 and SUN also hold every ``test_seen_loc``
image; :func:`src.data.att_splits.validation_splits` must keep only their ``trainval_loc`` images.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from src.data.apy_annotations import ANNOTATION_FILES, ApyAnnotationsDataModule
from src.data.arrays import DataError
from src.data.att_splits import gbu_splits, read_att_splits, validation_splits
from src.data.mat_files import class_indices

LOGGER = "src.data.att_splits"
WHAT = "images (test)"
# dataset: test_seen images in (train_loc, val_loc) of the release, dropped by the fix.
LEAKED = {"AWA1": (3404, 1554), "AWA2": (4031, 1851), "SUN": (2320, 260)}
DATASETS = ("AWA1", "AWA2", "CUB", "SUN", "APY")


def load(real_data, dataset: str) -> tuple[Path, dict, list[str], int]:
    """(path, mat, class names, N) of the real ``dataset/att_splits.mat``; N = the largest loc."""
    root = real_data(f"{dataset}/att_splits.mat")
    path, mat, names = read_att_splits(root / dataset, "att")
    n = max(int(np.asarray(mat[k]).max()) for k in mat if k.endswith("_loc"))
    return path, mat, names, n


def assert_no_test_image(splits: dict[str, np.ndarray]) -> None:
    """``train`` and ``val`` lie in ``trainval``, apart from each other and from both tests."""
    for part in ("train", "val"):
        idx = splits[part]
        assert idx.size, part
        assert np.isin(idx, splits["trainval"]).all(), f"{part} leaves trainval"
        for test in ("test_seen", "test_unseen"):
            leaked = np.intersect1d(idx, splits[test])
            assert leaked.size == 0, f"{leaked.size} {test} images in {part}"
    assert np.intersect1d(splits["train"], splits["val"]).size == 0


# -------------------------------------------------------- K = 1: the file's train_loc/val_loc
@pytest.mark.parametrize("dataset", list(LEAKED))
def test_file_locs_lose_their_test_seen_images(real_data, caplog, dataset):
    path, mat, names, n = load(real_data, dataset)
    assert "train_loc" in mat and "val_loc" in mat
    labels = np.zeros(n, dtype=np.int64)  # only the class-list fallback reads labels
    splits = gbu_splits(mat, path, n, WHAT)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        splits |= validation_splits(mat, path, names, 1, labels, splits["trainval"], WHAT)
    assert_no_test_image(splits)
    # What is left of the file's locs is exactly trainval, in the file's (sorted) order.
    np.testing.assert_array_equal(
        np.sort(np.concatenate([splits["train"], splits["val"]])), np.sort(splits["trainval"])
    )
    for part in ("train", "val"):
        assert np.all(np.diff(splits[part]) > 0)
    train_leak, val_leak = LEAKED[dataset]
    train_locs, val_locs = mat["train_loc"].size, mat["val_loc"].size
    assert (len(splits["train"]), len(splits["val"])) == (
        train_locs - train_leak,
        val_locs - val_leak,
    )
    records = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert records == [
        f"{path}: dropped {train_leak} of {train_locs} train_loc and {val_leak} of {val_locs} "
        f"val_loc images that are not in trainval_loc ({train_leak + val_leak} of them are "
        "test_seen_loc images), so that validation never sees a test image."
    ]
    assert train_leak + val_leak == mat["test_seen_loc"].size


# ------------------------------------------------- K = 2, 3: the class lists, all five datasets
@pytest.mark.parametrize("val_split", [2, 3])
@pytest.mark.parametrize("dataset", DATASETS)
def test_class_lists_take_only_trainval_images(real_data, dataset, val_split):
    """Labels are drawn at random (no res101.mat here), but as in the release: every test_seen
    image has a trainval class, so a rebuild by class alone would take test_seen images."""
    path, mat, names, n = load(real_data, dataset)
    real_data(*(f"{dataset}/{p}classes{val_split}.txt" for p in ("train", "val")))
    splits = gbu_splits(mat, path, n, WHAT)
    rng = np.random.default_rng(val_split)
    seen = class_indices(path.parent / "trainvalclasses.txt", names)
    labels = rng.choice(class_indices(path.parent / "testclasses.txt", names), n)
    labels[splits["trainval"]] = rng.choice(seen, splits["trainval"].size)
    labels[splits["test_seen"]] = rng.choice(seen, splits["test_seen"].size)
    splits |= validation_splits(mat, path, names, val_split, labels, splits["trainval"], WHAT)
    assert_no_test_image(splits)
    # The check has teeth: test_seen images do share the classes of train and val.
    for part in ("train", "val"):
        assert np.isin(labels[splits["test_seen"]], labels[splits[part]]).any()


APY_FILES = ["APY/att_splits.mat", *(f"APY/attribute_data/{name}" for name in ANNOTATION_FILES)]


@pytest.mark.parametrize("val_split", [1, 2, 3])
@pytest.mark.parametrize("split_mode", ["val", "test"])
def test_apy_validation_holds_no_test_image(real_data, split_mode, val_split):
    """APY with its real labels (the annotations), through the data module."""
    root = real_data(*APY_FILES)
    dm = ApyAnnotationsDataModule(
        data_dir=str(root), cache_dir=None, split_mode=split_mode, val_split=val_split
    )
    dm.setup()
    splits = dm.arrays.splits
    assert_no_test_image(splits)
    # What val mode trains and evaluates on (train less its held-out images, held-out, val).
    for idx in dm._split_indices(dm.arrays, "val"):
        assert np.isin(idx, splits["trainval"]).all()


# ---------------------------------------------------------------- a hand-made mat, no files
def mat_dict(train_loc, val_loc) -> dict:
    """12 images: trainval 1–8, test_seen 9–10, test_unseen 11–12 (1-based, uint16)."""

    def loc(values):
        return np.asarray(values, dtype=np.uint16)[:, None]

    return {
        "trainval_loc": loc([3, 1, 2, 4, 8, 6, 5, 7]),  # unsorted, as in the release
        "test_seen_loc": loc([9, 10]),
        "test_unseen_loc": loc([11, 12]),
        "train_loc": loc(train_loc),
        "val_loc": loc(val_loc),
    }


def file_splits(mat: dict) -> dict[str, np.ndarray]:
    path = Path("HAND/att_splits.mat")
    splits = gbu_splits(mat, path, 12, WHAT)
    labels = np.zeros(12, dtype=np.int64)
    return splits | validation_splits(mat, path, ["c"], 1, labels, splits["trainval"], WHAT)


def test_test_seen_images_in_the_locs_are_dropped_and_counted(caplog):
    mat = mat_dict(train_loc=[1, 2, 3, 9, 10], val_loc=[4, 5, 6, 7, 8, 10])
    with caplog.at_level(logging.INFO, logger=LOGGER):
        splits = file_splits(mat)
    assert splits["train"].tolist() == [0, 1, 2]
    assert splits["val"].tolist() == [3, 4, 5, 6, 7]
    assert_no_test_image(splits)
    [message] = [r.getMessage() for r in caplog.records if r.name == LOGGER]  # logged once
    assert "dropped 2 of 5 train_loc and 1 of 6 val_loc images that are not in" in message
    assert "(3 of them are test_seen_loc images)" in message


def test_clean_locs_are_kept_and_nothing_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        splits = file_splits(mat_dict(train_loc=[1, 2, 3, 4, 5], val_loc=[6, 7, 8]))
    assert splits["train"].tolist() == [0, 1, 2, 3, 4] and splits["val"].tolist() == [5, 6, 7]
    assert not [r for r in caplog.records if r.name == LOGGER]


def test_val_loc_of_test_images_only_is_an_error():
    with pytest.raises(DataError, match=r"HAND/att_splits\.mat: key 'val_loc' holds no trainval"):
        file_splits(mat_dict(train_loc=[1, 2, 3], val_loc=[9, 11]))


def test_train_and_val_locs_sharing_an_image_is_an_error():
    with pytest.raises(
        DataError, match=r"HAND/att_splits\.mat: keys 'train_loc' and 'val_loc' share 1 images"
    ):
        file_splits(mat_dict(train_loc=[1, 2, 3], val_loc=[3, 4]))
