"""Defaults on real data: auto preprocessing, scale-consistent W = I, decay towards the start."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hydra_utils import QUIET, compose_config

from src.data.arrays import ZSLArrays
from src.data.datamodule import ZSLDataModule
from src.models.metric import BilinearMetric, identity_scale
from src.models.nearest_signature import cosine_distances
from src.models.system import MetricZSLSystem
from src.train import train

APY_FILES = ["APY/att_splits.mat", *(f"APY/attribute_data/{n}" for n in ("apascal_train.txt",))]


class ArrayModule(ZSLDataModule):
    """A datamodule over given arrays (6 classes: 0-3 seen, 4-5 unseen)."""

    def __init__(self, features, signatures, kind="attributes", **kwargs):
        super().__init__(split_mode="test", **kwargs)
        self._features, self._signatures, self.signature_kind = features, signatures, kind

    def load_arrays(self) -> ZSLArrays:
        n = len(self._features)
        labels = np.arange(n) % 6
        idx = np.arange(n)
        half = (idx // 6) % 2
        splits = {
            "trainval": idx[(labels < 4) & (half == 0)],
            "test_seen": idx[(labels < 4) & (half == 1)],
            "test_unseen": idx[labels >= 4],
        }
        names = [f"c{i}" for i in range(6)]
        return ZSLArrays(self._features, labels, self._signatures, names, splits, "arrays")


def module(features, signatures, kind="attributes"):
    dm = ArrayModule(
        features.astype(np.float32),
        signatures,
        kind,
        standardise="auto",
        l2_features="auto",
        l2_signatures="auto",
    )
    dm.setup()
    return dm


@pytest.mark.parametrize(
    ("features", "signature_dim", "kind", "expected"),
    [
        ("binary", 8, "attributes", (False, True, True)),  # attribute vectors, d = k
        ("binary", 5, "text", (False, True, False)),  # 0/1 features, text signatures
        ("real", 8, "attributes", (False, True, True)),  # d = k attributes: signature space
        ("real", 5, "attributes", (True, False, False)),  # CNN-like features
        ("real", 8, "text", (True, False, False)),  # d = k by chance, text signatures
    ],
)
def test_auto_preprocessing_follows_the_kind_of_features(features, signature_dim, kind, expected):
    rng = np.random.default_rng(0)
    x = (rng.random((60, 8)) < 0.3) if features == "binary" else rng.normal(size=(60, 8))
    dm = module(x, rng.random((6, signature_dim)), kind)
    assert (dm.standardise, dm.l2_features, dm.l2_signatures) == expected


def test_bad_preprocessing_value_is_named():
    with pytest.raises(ValueError, match=r"data\.standardise='yes'.*true, false or auto"):
        ArrayModule(np.zeros((6, 2)), np.zeros((6, 2)), standardise="yes")


def test_identity_init_on_unit_vectors_ranks_exactly_like_the_cosine():
    rng = np.random.default_rng(1)
    features = torch.nn.functional.normalize(torch.rand(200, 12), dim=1)
    signatures = torch.nn.functional.normalize(torch.rand(9, 12), dim=1)
    labels = torch.as_tensor(rng.integers(0, 9, 200))
    metric = BilinearMetric(12, 12)
    metric.initialise(features, signatures[labels], ridge=None)
    assert torch.equal(metric.W, torch.eye(12))
    distances = metric.distances(features, signatures)
    # D = ‖x − a‖² = 2 − 2 cos for unit vectors: the same order as the cosine distance
    assert torch.allclose(distances, 2 * cosine_distances(features, signatures), atol=1e-5)
    assert torch.equal(distances.argmin(1), cosine_distances(features, signatures).argmin(1))


def test_identity_init_rescales_features_to_the_signatures_norm():
    features = 7.0 * torch.nn.functional.normalize(torch.rand(100, 6), dim=1)
    signatures = torch.nn.functional.normalize(torch.rand(100, 6), dim=1)
    features[0] = 0.0  # a zero vector does not count
    assert identity_scale(features, signatures) == pytest.approx(1 / 7, rel=1e-5)
    metric = BilinearMetric(6, 6)
    metric.initialise(features, signatures, ridge=None)
    embedded_norms = metric.embed(features[1:]).detach().norm(dim=1)
    assert float(embedded_norms.median()) == pytest.approx(1.0, rel=1e-4)
    # the threshold starts between positive and negative distances of unit scale
    assert 0.0 < float(metric.b) < 4.0


def test_weight_decay_towards_the_initialisation_adds_mu_times_the_drift():
    model = MetricZSLSystem(4, 4, weight_decay=0.5, weight_decay_to="init")
    model.W_init.copy_(torch.eye(4))
    model.L_init.copy_(torch.eye(4))
    with torch.no_grad():
        model.metric.W.copy_(torch.eye(4) + 1.0)
    model.metric.W.grad = torch.zeros(4, 4)
    model.metric.L.grad = torch.zeros(4, 4)
    model.on_before_optimizer_step(None)
    assert torch.allclose(model.metric.W.grad, torch.full((4, 4), 0.5))
    assert torch.equal(model.metric.L.grad, torch.zeros(4, 4))  # L is at its start
    groups = model.configure_optimizers().param_groups
    assert groups[0]["weight_decay"] == 0.0  # not Adam's decay towards 0 as well


def test_weight_decay_towards_zero_is_adams_own():
    model = MetricZSLSystem(4, 4, weight_decay=0.5, weight_decay_to="zero")
    model.metric.W.grad = torch.zeros(4, 4)
    model.on_before_optimizer_step(None)
    assert torch.equal(model.metric.W.grad, torch.zeros(4, 4))
    assert model.configure_optimizers().param_groups[0]["weight_decay"] == 0.5


def test_bad_decay_target_is_named():
    with pytest.raises(ValueError, match=r"model\.weight_decay_to='one' is invalid"):
        MetricZSLSystem(4, 4, weight_decay_to="one")


def test_apy_defaults_never_end_below_the_untrained_metric_on_validation(real_data, tmp_path):
    """Defaults chosen on validation: W = I at lr 1e-4 on L2-normalised annotations."""
    root = real_data(*APY_FILES)
    common = [*QUIET, "data=apy_annotations", f"data.data_dir={root}", "data.split_mode=val"]
    common.append(f"data.cache_dir={tmp_path / 'cache'}")
    untrained = train(compose_config([*common, "trainer.max_epochs=0"], tmp_path / "u"))
    trained = train(
        compose_config([*common, "+experiment=hard_neg", "trainer.max_epochs=8"], tmp_path / "t")
    )
    assert trained["val/zsl_acc"] >= untrained["val/zsl_acc"]
    assert untrained["val/zsl_acc"] > 0.7  # = nearest signature (cosine) on this fold
