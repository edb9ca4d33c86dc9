"""The xlsa17 loader: real att_splits.mat files, features in the release's format, options."""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import numpy as np
import pytest
import scipy.io
from hydra_utils import QUIET, compose_config

import src.data.xlsa17 as xlsa17
from src.data.att_splits import fill_missing_attributes
from src.train import train

# dataset: (classes, k, seen, unseen), as documented for the release.
COUNTS = {
    "AWA1": (50, 85, 40, 10),
    "AWA2": (50, 85, 40, 10),
    "CUB": (200, 312, 150, 50),
    "SUN": (717, 102, 645, 72),
    "APY": (32, 64, 20, 12),
}


def list_classes(folder: Path, name: str, index: dict[str, int]) -> np.ndarray:
    return np.array([index[line.strip()] for line in (folder / name).read_text().splitlines()])


def write_features(folder: Path, path: Path, feature_dim: int) -> int:
    """Write a res101.mat-style file whose labels agree with the real locs of ``folder``.

    N is the largest loc; test_unseen images get a test class, the others a trainval class
    (a train1/val1 class for images of train_loc/val_loc where the file has them). Returns N.
    """
    rng = np.random.default_rng(0)
    mat = scipy.io.loadmat(folder / "att_splits.mat")
    names = [str(n) for n in np.concatenate(mat["allclasses_names"].ravel())]
    index = {name: i for i, name in enumerate(names)}
    locs = {k: mat[k].ravel().astype(np.int64) - 1 for k in mat if k.endswith("_loc")}
    n = int(max(v.max() for v in locs.values())) + 1
    trainval = list_classes(folder, "trainvalclasses.txt", index)
    labels = rng.choice(trainval, n)
    groups = {"test_unseen_loc": "testclasses.txt"}
    if "train_loc" in locs:
        groups |= {"train_loc": "trainclasses1.txt", "val_loc": "valclasses1.txt"}
    for key, classes in groups.items():
        labels[locs[key]] = rng.choice(list_classes(folder, classes, index), len(locs[key]))
    # every seen class has test_seen images, as in the release (a class without any is
    # refused), within the classes of train_loc/val_loc where those hold test_seen images
    test_seen = locs["test_seen_loc"]
    parts = [(np.ones(len(test_seen), bool), trainval)]
    if "train_loc" in locs:
        in_train = np.isin(test_seen, locs["train_loc"])
        in_val = np.isin(test_seen, locs["val_loc"]) & ~in_train
        parts = [
            (in_train, list_classes(folder, "trainclasses1.txt", index)),
            (in_val, list_classes(folder, "valclasses1.txt", index)),
            (~in_train & ~in_val, trainval),
        ]
    for chosen, classes in parts:
        labels[test_seen[chosen]] = np.resize(rng.permutation(classes), int(chosen.sum()))
    features = rng.random((feature_dim, n), dtype=np.float32)  # d × N, as in the release
    scipy.io.savemat(path, {"features": features, "labels": (labels + 1)[:, None]})
    return n


@pytest.mark.parametrize("split_mode", ["test", "val"])
@pytest.mark.parametrize("dataset", list(COUNTS))
def test_real_att_splits_give_the_documented_classes(real_data, tmp_path, dataset, split_mode):
    root = real_data(f"{dataset}/att_splits.mat")
    folder = root / dataset
    features = tmp_path / "res101.mat"
    n = write_features(folder, features, feature_dim=4)
    cfg = compose_config(
        [
            *QUIET,
            f"data={dataset.lower()}",
            f"data.data_dir={root}",
            f"data.feature_file={features}",
            f"data.split_mode={split_mode}",
            f"data.cache_dir={tmp_path / 'cache'}",
        ],
        tmp_path / "run",
    )
    dm = hydra.utils.instantiate(cfg.data)
    dm.setup()
    classes, k, seen, unseen = COUNTS[dataset]
    assert dm.signatures.shape == (classes, k)
    assert len(dm.class_names) == classes and len(dm.arrays.features) == n
    if split_mode == "test":
        assert (len(dm.seen_classes), len(dm.unseen_classes)) == (seen, unseen)
    else:  # train classes are "seen", val classes "unseen"; together the test-mode seen classes
        train = len((folder / "trainclasses1.txt").read_text().split())
        val = len((folder / "valclasses1.txt").read_text().split())
        assert (len(dm.seen_classes), len(dm.unseen_classes)) == (train, val)
        assert train + val == seen


def test_awa2_res101_in_the_release_format_trains_one_epoch(real_data, tmp_path):
    root = real_data("AWA2/att_splits.mat")
    folder = tmp_path / "data" / "AWA2"
    folder.mkdir(parents=True)
    (folder / "att_splits.mat").write_bytes((root / "AWA2" / "att_splits.mat").read_bytes())
    n = write_features(root / "AWA2", folder / "res101.mat", feature_dim=2048)
    assert n == 37322
    out = tmp_path / "run"
    cfg = compose_config(
        [
            *QUIET,
            "data=awa2",
            f"data.data_dir={tmp_path / 'data'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            "trainer.max_epochs=1",
            "data.batch_size=2048",  # a dozen steps: the test checks the plumbing, not accuracy
            "logger=csv",
        ],
        out,
    )
    metrics = train(cfg)
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(metrics)
    assert 0.0 <= metrics["test/zsl_acc"] <= 1.0
    assert len(list((tmp_path / "cache").glob("AWA2-res101-*.npz"))) == 1


# ------------------------------------------------------------------- options, on the toy data
def test_features_n_by_d_load_like_d_by_n(toy):
    toy.write()
    expected = toy.module(split_mode="test").load_arrays()
    toy.res101["features"] = toy.res101["features"].T.copy()
    toy.write()
    arrays = toy.module(split_mode="test").load_arrays()
    np.testing.assert_array_equal(arrays.features, expected.features)
    assert arrays.features.shape == (60, 5)


def test_missing_original_att_becomes_the_attribute_mean_over_known_classes():
    values = np.array([[10.0, -1.0, 30.0], [-1.0, 4.0, 6.0]])  # k × C
    np.testing.assert_allclose(fill_missing_attributes(values), [[10, 20, 30], [5, 4, 6]])


@pytest.mark.parametrize("kind", ["att", "original_att"])
def test_signatures_are_one_row_per_class(toy, kind):
    toy.att_splits["original_att"][0, 2] = -1
    toy.write()
    arrays = toy.module(split_mode="test", signatures=kind).load_arrays()
    expected = toy.att_splits[kind].T.copy()
    if kind == "original_att":
        expected[2, 0] = np.delete(expected[:, 0], 2).mean()
    np.testing.assert_allclose(arrays.signatures, expected, rtol=1e-6)


def test_val_split_uses_the_file_locs_for_k1_and_the_class_lists_otherwise(toy):
    labels = toy.res101["labels"].ravel() - 1
    trainval = toy.att_splits["trainval_loc"].ravel() - 1
    # Locs that differ from the class-list rebuild, to tell apart; they also hold the test_seen
    # image of loc 2 (index 1), which must not reach train (see tests/test_validation_leak.py).
    toy.att_splits["train_loc"] = np.array([[1], [2], [3]])
    toy.att_splits["val_loc"] = np.array([[31], [33]])
    toy.class_lists |= {"trainclasses2.txt": ["c1", "c2", "c3"], "valclasses2.txt": ["c0"]}
    toy.write()
    k1 = toy.module(split_mode="val", val_split=1).load_arrays().splits
    assert k1["train"].tolist() == [0, 2] and k1["val"].tolist() == [30, 32]
    k2 = toy.module(split_mode="val", val_split=2).load_arrays().splits
    np.testing.assert_array_equal(k2["val"], trainval[labels[trainval] == 0])
    assert set(labels[k2["train"]]) == {1, 2, 3}


def test_features_are_parsed_once_then_read_from_the_cache(toy, tmp_path, monkeypatch):
    toy.write()
    first = toy.module(split_mode="test", cache_dir=str(tmp_path / "cache")).load_arrays()

    def no_parsing(path):
        raise AssertionError(f"{path} was parsed again despite the cache")

    monkeypatch.setattr(xlsa17, "read_features", no_parsing)
    second = toy.module(split_mode="test", cache_dir=str(tmp_path / "cache")).load_arrays()
    np.testing.assert_array_equal(second.features, first.features)
    # New content means a new key: the edited file is parsed again.
    toy.res101["features"] = toy.res101["features"] + 1
    toy.write()
    with pytest.raises(AssertionError, match="parsed again"):
        toy.module(split_mode="test", cache_dir=str(tmp_path / "cache")).load_arrays()
