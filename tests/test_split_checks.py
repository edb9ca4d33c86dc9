"""Broken splits stop with one line naming the split and the count (issue: results never lie)."""

from __future__ import annotations

import numpy as np
import pytest

from src.data.arrays import DataError


def fails(toy, pattern: str, **kwargs) -> str:
    toy.write()
    with pytest.raises(DataError, match=pattern) as info:
        toy.module(**kwargs).load_arrays()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_duplicate_indices_in_trainval_are_counted(toy):
    trainval = toy.att_splits["trainval_loc"]
    toy.att_splits["trainval_loc"] = np.concatenate([trainval, trainval[:5]])
    fails(toy, r"split 'trainval' holds 5 duplicate indices \(25 entries, 20 distinct images")


def test_duplicate_indices_in_a_test_split_are_counted(toy):
    unseen = toy.att_splits["test_unseen_loc"]
    toy.att_splits["test_unseen_loc"] = np.concatenate([unseen, unseen[:3], unseen[:1]])
    fails(toy, r"split 'test_unseen' holds 4 duplicate indices")


def test_test_seen_images_inside_trainval_are_refused(toy):
    test_seen = toy.att_splits["test_seen_loc"]
    toy.att_splits["trainval_loc"] = np.concatenate([toy.att_splits["trainval_loc"], test_seen[:2]])
    fails(toy, r"splits 'trainval' and 'test_seen' share 2 images")


def test_test_unseen_images_inside_trainval_are_refused(toy):
    unseen = toy.att_splits["test_unseen_loc"]
    toy.att_splits["trainval_loc"] = np.concatenate([toy.att_splits["trainval_loc"], unseen[:3]])
    fails(toy, r"splits 'trainval' and 'test_unseen' share 3 images")


def test_a_test_class_without_images_is_refused(toy):
    unseen = toy.att_splits["test_unseen_loc"]
    labels = toy.res101["labels"].reshape(-1)
    # every image of class c5 (label 6, 1-based) leaves test_unseen
    toy.att_splits["test_unseen_loc"] = unseen[labels[unseen.reshape(-1) - 1] != 6]
    fails(toy, r"split 'test_unseen' has no image of 1 classes .*\(c5\)")


def test_the_embedded_data_passes_the_checks():
    from src.data.synthetic import make_synthetic_arrays

    arrays = make_synthetic_arrays()
    assert len(arrays.splits["trainval"]) == len(np.unique(arrays.splits["trainval"]))
