"""SAE (model=sae): its Sylvester equation against numpy, its validation choice, its runs."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from hydra_utils import QUIET, compose_config

from src.data.synthetic import SyntheticDataModule
from src.models import SAEClassifier
from src.models.sae import DEFAULT_LAMBDAS, DIRECTIONS, SAEProblem
from src.train import train

# A smaller instance of the default data's generator, as in tests/test_baselines.py.
SMALL = {"feature_dim": 64, "images_per_class": 60}


def synthetic() -> SyntheticDataModule:
    dm = SyntheticDataModule(generator=SMALL)
    dm.setup()
    return dm


def kron_solution(x: np.ndarray, s: np.ndarray, lam: float) -> np.ndarray:
    """W (k × d) of ``A W + W B = C`` written as one linear system on vec W (column-major):
    ``(I_d ⊗ A + Bᵀ ⊗ I_k) vec W = vec C`` with A = SSᵀ, B = λXXᵀ, C = (1+λ)SXᵀ, X = xᵀ (d × N)
    and S = sᵀ (k × N), images as columns as in the paper."""
    big_x, big_s = x.T, s.T
    a, b, c = big_s @ big_s.T, lam * big_x @ big_x.T, (1 + lam) * big_s @ big_x.T
    k, d = c.shape
    system = np.kron(np.eye(d), a) + np.kron(b.T, np.eye(k))
    return np.linalg.solve(system, c.flatten(order="F")).reshape((k, d), order="F")


def numpy_cosine_distances(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    u = u / np.linalg.norm(u, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return 1.0 - u @ v.T


def numpy_zsl(distances: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    """Per-class mean top-1 among ``classes`` (the columns of ``distances``)."""
    preds = classes[distances.argmin(1)]
    return float(np.mean([(preds[labels == c] == c).mean() for c in classes]))


# ------------------------------------------------------------------------ the equation
@pytest.mark.parametrize("lam", [0.1, 1.0, 50.0])
def test_sae_weights_solve_the_sylvester_equation_like_the_kron_system(lam):
    rng = np.random.default_rng(0)
    x, s = rng.normal(size=(20, 4)), rng.random((20, 3))  # N = 20 images, d = 4, k = 3
    problem = SAEProblem(torch.tensor(x), torch.tensor(s))
    expected = kron_solution(x, s, lam)
    for weights in (problem.weights(lam), problem.eigen_weights(lam)):
        assert weights.dtype == torch.float64 and weights.shape == (3, 4)
        np.testing.assert_allclose(weights.numpy(), expected, rtol=1e-8, atol=1e-10)


def test_sae_weights_minimise_the_autoencoder_objective():
    """‖X − WᵀS‖² + λ‖WX − S‖² has zero gradient at the solution (the equation's origin)."""
    rng = np.random.default_rng(1)
    x, s, lam = rng.normal(size=(30, 5)), rng.random((30, 3)), 2.0
    weights = SAEProblem(torch.tensor(x), torch.tensor(s)).weights(lam).requires_grad_()
    big_x, big_s = torch.tensor(x).T, torch.tensor(s).T
    objective = (big_x - weights.T @ big_s).square().sum() + lam * (
        weights @ big_x - big_s
    ).square().sum()
    objective.backward()
    assert float(weights.grad.abs().max()) < 1e-8 * float(objective.detach())


def test_a_singular_equation_gets_its_minimum_norm_solution():
    """Fewer seen classes than signature dimensions (S Sᵀ singular) and a feature constant at
    0 (X Xᵀ singular) share a null direction: W is the minimum-norm solution of the equation,
    the one of the kron system's least squares."""
    rng = np.random.default_rng(2)
    classes = rng.random((2, 3))  # 2 classes, k = 3: S Sᵀ has rank 2
    s = classes[rng.integers(0, 2, 20)]
    x = np.c_[rng.normal(size=(20, 3)), np.zeros(20)]  # d = 4, the last feature always 0
    lam = 3.0
    problem = SAEProblem(torch.tensor(x), torch.tensor(s))
    weights = problem.weights(lam).numpy()
    big_x, big_s = x.T, s.T
    a, b, c = big_s @ big_s.T, lam * big_x @ big_x.T, (1 + lam) * big_s @ big_x.T
    np.testing.assert_allclose(a @ weights + weights @ b, c, atol=1e-9)  # solves the equation
    system = np.kron(np.eye(4), a) + np.kron(b.T, np.eye(3))
    min_norm = np.linalg.lstsq(system, c.flatten(order="F"), rcond=1e-10)[0]
    np.testing.assert_allclose(weights, min_norm.reshape((3, 4), order="F"), atol=1e-9)
    assert np.isfinite(weights).all() and np.allclose(weights[:, 3], 0.0)


# -------------------------------------------------------------------- validation choice
def test_sae_selection_picks_the_best_validation_zsl_and_never_reads_test_images():
    dm = synthetic()
    model = SAEClassifier(dm.feature_dim, dm.signature_dim)
    model.fit(dm)

    # Brute force: scipy's Sylvester solver on the validation split's training images, both
    # directions scored with numpy cosines on its val classes.
    split = dm.make_split("val")
    sig = dm.signatures.double().numpy()
    x = split.train.features.double().numpy()
    s = sig[split.train.labels.numpy()]
    unseen = split.unseen_classes.numpy()
    x_val = split.eval["unseen"].features.double().numpy()
    y_val = split.eval["unseen"].labels.numpy()
    brute = np.zeros((len(DIRECTIONS), len(DEFAULT_LAMBDAS)))
    for j, lam in enumerate(DEFAULT_LAMBDAS):
        w = scipy.linalg.solve_sylvester(s.T @ s, lam * x.T @ x, (1 + lam) * s.T @ x)
        f2s = numpy_cosine_distances(x_val @ w.T, sig[unseen])
        s2f = numpy_cosine_distances(x_val, sig[unseen] @ w)
        brute[0, j], brute[1, j] = numpy_zsl(f2s, y_val, unseen), numpy_zsl(s2f, y_val, unseen)
    np.testing.assert_allclose(model.selection_grid.numpy(), brute, atol=1e-12)
    best = np.unravel_index(np.argmax(brute), brute.shape)  # first maximum, directions × λ
    assert model.direction == DIRECTIONS[best[0]]
    assert float(model.selected_lambda) == DEFAULT_LAMBDAS[best[1]]
    assert float(model.selection_zsl_acc) == pytest.approx(brute.max())
    assert brute.max() > brute.min()  # the grid matters on this data
    assert not np.allclose(brute[0], brute[1])  # and so does the direction

    # The final W is refitted on the run's own training images (trainval) with the choice.
    x_tv = dm.train_features.double().numpy()
    s_tv = sig[dm.train_labels.numpy()]
    lam = DEFAULT_LAMBDAS[best[1]]
    trainval = scipy.linalg.solve_sylvester(s_tv.T @ s_tv, lam * x_tv.T @ x_tv,
                                            (1 + lam) * s_tv.T @ x_tv)  # fmt: skip
    np.testing.assert_allclose(model.W.numpy(), trainval, rtol=1e-6, atol=1e-10)

    # Test images set to NaN: the same choice and W, finite.
    poisoned = synthetic()
    for part in ("test_seen", "test_unseen"):
        poisoned.arrays.features[poisoned.arrays.splits[part]] = np.nan
    again = SAEClassifier(dm.feature_dim, dm.signature_dim)
    again.fit(poisoned)
    assert torch.equal(again.selection_grid, model.selection_grid)
    assert torch.isfinite(again.W).all() and torch.equal(again.W, model.W)


def test_the_configured_direction_is_the_one_scored():
    dm = synthetic()
    f2s = SAEClassifier(dm.feature_dim, dm.signature_dim, [10.0], ["feature_to_semantic"])
    s2f = SAEClassifier(dm.feature_dim, dm.signature_dim, [10.0], "semantic_to_feature")
    for model in (f2s, s2f):
        model.fit(dm)
        assert model.selection_grid is None  # one (direction, λ): no selection
        model.signatures = dm.signatures
    assert torch.equal(f2s.W, s2f.W)  # the direction changes the scoring, not the fit
    x, w, sig = dm.train_features[:7].double(), f2s.W, dm.signatures.double()
    np.testing.assert_allclose(
        f2s.class_distances(x).numpy(), numpy_cosine_distances((x @ w.T).numpy(), sig.numpy())
    )
    np.testing.assert_allclose(
        s2f.class_distances(x).numpy(), numpy_cosine_distances(x.numpy(), (sig @ w).numpy())
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lambdas=[]", r"model\.lambdas=\[\] is invalid"),
        ("model.lambdas=[1.0,-1.0]", r"model\.lambdas=\[1\.0, -1\.0\] is invalid"),
        ("model.directions=[sideways]", r"model\.directions=\['sideways'\] is invalid"),
    ],
)
def test_bad_sae_values_stop_with_a_message(override, message, tmp_path):
    cfg = compose_config([*QUIET, "model=sae", override], tmp_path / "run")
    with pytest.raises(Exception, match=message):
        train(cfg)


def test_sae_end_to_end_on_the_default_data(tmp_path):
    metrics = train(compose_config([*QUIET, "model=sae"], tmp_path / "run"))
    assert metrics["test/zsl_acc"] >= 0.9  # 0.943 measured; chance is 0.1
    assert 0.0 < metrics["test/gzsl_H"] <= 1.0  # 0.736 measured
    assert metrics["val/sae_direction"] == DIRECTIONS.index("semantic_to_feature")
    assert metrics["val/sae_lambda"] == pytest.approx(1.0)  # chosen on validation
    assert metrics["val/selection_zsl_acc"] > 0.9
