"""Issue 19: a checkpoint names its data by content, and is used on that data only.

The fingerprint hashes each part of a dataset (class names, features, labels, signatures, split
indices); resuming or evaluating a checkpoint on data whose content differs is refused, naming
the parts. A cached array is used only while its source files are the ones it was built from.
"""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from hydra_utils import QUIET, compose_config

from src.data import arrays as arrays_module
from src.data.arrays import ZSLArrays
from src.data.cache import cached_arrays, known_digests
from src.runs.checkpoints import (
    RUN_KEY,
    CheckpointError,
    check_same_dataset,
    dataset_identity,
)

LABELS = [0, 0, 1, 1, 2, 2, 3, 3]
#: one distinct, non-zero signature per class
SIGNATURES = np.array([[1, 0], [0, 1], [1, 1], [1, -1]], dtype=np.float32)


def toy(**changes) -> ZSLArrays:
    """4 classes × 2 images: classes a, b seen (image 0 trains, image 1 tests), c, d unseen."""
    parts = {
        "features": np.arange(24, dtype=np.float32).reshape(8, 3),
        "labels": np.array(LABELS),
        "signatures": SIGNATURES,
        "class_names": ["a", "b", "c", "d"],
        "splits": {"trainval": [0, 2], "test_seen": [1, 3], "test_unseen": [4, 5, 6, 7]},
        "source": "toy",
    }
    return ZSLArrays(**{**parts, **changes})


def identity(arrays: ZSLArrays) -> dict:
    return dataset_identity(SimpleNamespace(arrays=arrays))


def test_each_part_has_its_own_hash_of_values_dtype_and_shape():
    base = toy()
    features = base.features
    expected = hashlib.sha256(b"<f4(8, 3)" + features.tobytes()).hexdigest()[:12]
    assert base.fingerprint()["features"] == expected
    assert toy().fingerprint() == base.fingerprint()  # the same content, another object
    other_features = features.copy()
    other_features[7, 2] += 1.0
    variants = {
        "features": toy(features=other_features),
        "signatures": toy(signatures=SIGNATURES[[1, 0, 2, 3]]),
        "classes": toy(class_names=["a", "b", "c", "e"]),
        # the same split sizes, other images: what the old identity could not see
        "splits": toy(
            splits={"trainval": [1, 3], "test_seen": [0, 2], "test_unseen": [4, 5, 6, 7]}
        ),
        "labels": toy(labels=[0, 0, 1, 1, 3, 3, 2, 2]),
    }
    for part, arrays in variants.items():
        differ = {k for k, v in arrays.fingerprint().items() if v != base.fingerprint()[k]}
        assert differ == {part}


def test_the_fingerprint_is_computed_once_per_dataset(monkeypatch):
    calls = []
    digest = arrays_module._digest
    monkeypatch.setattr(arrays_module, "_digest", lambda *v: calls.append(1) or digest(*v))
    arrays = toy()
    first = arrays.fingerprint()
    assert len(calls) == 5
    assert arrays.fingerprint() == first and len(calls) == 5


def test_other_content_under_the_same_name_and_sizes_is_refused_naming_the_parts():
    trained = {RUN_KEY: {"dataset": identity(toy())}}
    check_same_dataset(trained, identity(toy()), "x.ckpt", "evaluate")
    features = toy().features.copy()
    features[0, 0] = -1.0
    other = toy(features=features, signatures=SIGNATURES * 2)
    with pytest.raises(
        CheckpointError,
        match=r"ckpt_path=x.ckpt was trained on toy \[\w+\], but the configured data toy has "
        r"other features, signatures \[toy \[\w+\]\]: refusing to evaluate it",
    ):
        check_same_dataset(trained, identity(other), "x.ckpt", "evaluate")
    renamed = toy(source="elsewhere")
    with pytest.raises(CheckpointError, match="refusing to resume it on another dataset"):
        check_same_dataset(trained, identity(renamed), "x.ckpt", "resume")


def test_checkpoints_of_older_versions_are_checked_by_names_and_sizes(caplog):
    current = identity(toy())
    old = {RUN_KEY: {"dataset": {"name": "toy", "hash": current["sizes_hash"]}}}
    with caplog.at_level(logging.WARNING):
        check_same_dataset(old, current, "old.ckpt", "resume")
    assert "cannot check that its features, signatures and splits are these" in caplog.text
    fewer = toy(splits={"trainval": [0, 2], "test_seen": [1, 3], "test_unseen": [4, 5, 6]})
    with pytest.raises(CheckpointError, match="other class names or split sizes"):
        check_same_dataset(old, identity(fewer), "old.ckpt", "resume")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch run on the embedded data; its last checkpoint."""
    from src.train import train

    out = tmp_path_factory.mktemp("trained") / "run"
    train(compose_config([*QUIET, "trainer.max_epochs=1"], out))
    return out / "checkpoints" / "last.ckpt"


def test_eval_and_resume_refuse_data_generated_otherwise(trained, tmp_path):
    from src.eval import evaluate
    from src.train import train

    noisier = "data.generator.feature_noise=0.6"  # same name, classes and sizes
    out = tmp_path / "eval"
    cfg = compose_config([*QUIET[:1], f"ckpt_path={trained}", noisier], out, "eval")
    with pytest.raises(CheckpointError, match=r"has other features \[synthetic"):
        evaluate(cfg)
    assert not (out / "metrics.json").exists()
    out = tmp_path / "resumed"
    cfg = compose_config([*QUIET, "trainer.max_epochs=2", f"ckpt_path={trained}", noisier], out)
    with pytest.raises(CheckpointError, match="refusing to resume it on other data"):
        train(cfg)
    assert not (out / "checkpoints").exists()
    metrics = evaluate(
        compose_config([*QUIET[:1], f"ckpt_path={trained}"], tmp_path / "ok", "eval")
    )
    assert 0.0 <= metrics["test/zsl_acc"] <= 1.0  # its own data: evaluated


def test_a_cached_array_is_rebuilt_when_its_source_file_changes(tmp_path):
    source = tmp_path / "features.txt"
    source.write_text("1 2 3\n")
    builds = []

    def build():
        builds.append(1)
        return {"x": np.loadtxt(source)}

    for _ in range(2):
        first = cached_arrays(tmp_path / "cache", "toy", [source], {}, build)
    assert len(builds) == 1 and first["x"].tolist() == [1, 2, 3]
    source.write_text("1 2 4\n")  # the same name and size, other content
    again = cached_arrays(tmp_path / "cache", "toy", [source], {}, build)
    assert len(builds) == 2 and again["x"].tolist() == [1, 2, 4]


def test_a_cached_feature_hash_is_computed_once_when_the_entry_is_built(tmp_path, monkeypatch):
    source = tmp_path / "features.txt"
    source.write_text("1 2 3\n4 5 6\n")

    def build():
        return {"features": np.loadtxt(source, dtype=np.float32), "labels": np.array([0, 1])}

    cached_arrays(tmp_path / "cache", "toy", [source], {}, build)  # an entry of older versions
    built = cached_arrays(tmp_path / "cache", "toy", [source], {}, build, digests=("features",))
    expected = arrays_module.array_digest(build()["features"])
    assert known_digests(built) == {"features": expected}  # the old entry was completed
    calls = []
    monkeypatch.setattr(arrays_module, "_digest", lambda *v: calls.append(1) or "x")
    loaded = cached_arrays(tmp_path / "cache", "toy", [source], {}, build, digests=("features",))
    assert calls == [] and known_digests(loaded) == {"features": expected}
    # the fingerprint takes the stored hash, and it is the hash it would compute
    monkeypatch.undo()
    fresh = toy(features=np.arange(24, dtype=np.float32).reshape(8, 3))
    stored = toy(known_digests={"features": fresh.fingerprint()["features"]})
    assert stored.fingerprint() == fresh.fingerprint()


@pytest.mark.parametrize(
    "damage", [b"\x00\xff\xfe not text\n", b"a,b\n1,2\n"], ids=["binary", "other columns"]
)
def test_a_damaged_metrics_history_stops_a_resume_in_one_line(trained, tmp_path, damage):
    from src.core.errors import user_message
    from src.data.arrays import DataError
    from src.train import train

    history = trained.parent.parent / "csv" / "metrics.csv"
    whole = history.read_bytes()
    history.write_bytes(damage)
    try:
        out = tmp_path / "resumed"
        cfg = compose_config([*QUIET, "trainer.max_epochs=2", f"ckpt_path={trained}"], out)
        with pytest.raises(DataError) as caught:
            train(cfg)
        message = user_message(caught.value)
        assert message.startswith(f"{history} cannot be read as the run's metrics history (")
        assert "Restore it from a copy, or move it away" in message
        assert history.read_bytes() == damage  # left as it was
        assert not (out / "checkpoints").exists()
    finally:
        history.write_bytes(whole)
