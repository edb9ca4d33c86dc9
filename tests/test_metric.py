"""BilinearMetric: all-pairs distances against a brute-force loop, rank checks, ridge init."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.models.metric import BilinearMetric

D_FEAT, K_SIG = 7, 5


def _random_metric(rank: int | None, seed: int = 0) -> BilinearMetric:
    generator = torch.Generator().manual_seed(seed)
    metric = BilinearMetric(D_FEAT, K_SIG, rank).double()
    with torch.no_grad():
        metric.W.copy_(torch.randn(metric.W.shape, generator=generator, dtype=torch.float64))
        metric.L.copy_(torch.randn(metric.L.shape, generator=generator, dtype=torch.float64))
    return metric


def _brute_force(metric: BilinearMetric, features: torch.Tensor, signatures: torch.Tensor):
    """‖L(Wᵀx − a)‖² pair by pair, in float64 numpy."""
    w = metric.W.detach().numpy().astype(np.float64)
    lmat = metric.L.detach().numpy().astype(np.float64)
    x = features.numpy().astype(np.float64)
    a = signatures.numpy().astype(np.float64)
    out = np.zeros((len(x), len(a)))
    for i in range(len(x)):
        for c in range(len(a)):
            diff = lmat @ (w.T @ x[i] - a[c])
            out[i, c] = float(diff @ diff)
    return out


def _data(n: int = 11, c: int = 6, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, D_FEAT, generator=generator, dtype=torch.float64)
    signatures = torch.randn(c, K_SIG, generator=generator, dtype=torch.float64)
    return features, signatures


@pytest.mark.parametrize("rank", [None, K_SIG, 3, 1])
@pytest.mark.parametrize("chunk_size", [65536, 4, 1])
def test_distances_match_brute_force(rank, chunk_size):
    metric = _random_metric(rank)
    features, signatures = _data()
    expected = _brute_force(metric, features, signatures)
    with torch.no_grad():
        got = metric.distances(features, signatures, chunk_size=chunk_size)
    assert got.shape == (11, 6)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)
    assert (got >= 0).all()


@pytest.mark.parametrize("rank", [None, 2])
def test_pair_distances_match_brute_force(rank):
    metric = _random_metric(rank, seed=3)
    features, signatures = _data(n=9, c=9, seed=4)
    expected = np.diag(_brute_force(metric, features, signatures))
    with torch.no_grad():
        got = metric.pair_distances(features, signatures)
        all_pairs = metric.distances(features, signatures, chunk_size=2)
    assert got.shape == (9,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(all_pairs.diagonal().numpy(), got.numpy(), rtol=1e-10, atol=1e-10)


def test_distances_are_nonnegative_for_identical_pairs():
    """An image whose embedding equals a signature has D = 0 (never a negative round-off)."""
    metric = BilinearMetric(3, 3)
    with torch.no_grad():
        metric.W.copy_(torch.eye(3))
    features = torch.randn(50, 3, generator=torch.Generator().manual_seed(0)) * 1e3
    with torch.no_grad():
        got = metric.distances(features, features.clone())
    assert (got >= 0).all()
    # catastrophic cancellation leaves at most float32 round-off of ‖x‖², clamped at 0 from below
    scale = features.square().sum(1)
    assert (got.diagonal() <= 1e-6 * scale).all()


def test_distances_from_projections_matches_definition():
    generator = torch.Generator().manual_seed(5)
    p = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    q = torch.randn(6, 3, generator=generator, dtype=torch.float64)
    metric = BilinearMetric(3, 3)
    got = metric.distances_from_projections(p, q)
    expected = ((p[:, None, :] - q[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


def test_default_rank_is_full_and_l_starts_as_identity_rows():
    metric = BilinearMetric(4, 6)
    assert metric.rank == 6
    assert metric.W.shape == (4, 6)
    assert metric.L.shape == (6, 6)
    low = BilinearMetric(4, 6, rank=2)
    assert low.L.shape == (2, 6)
    torch.testing.assert_close(low.L.detach(), torch.eye(2, 6))


@pytest.mark.parametrize("rank", [0, -1, K_SIG + 1, 100])
def test_invalid_rank_raises(rank):
    with pytest.raises(ValueError, match=rf"model\.rank={rank}\b"):
        BilinearMetric(D_FEAT, K_SIG, rank)


@pytest.mark.parametrize("rank", [None, 3])
@pytest.mark.parametrize("ridge", [1.0, 0.25])
def test_initialise_is_closed_form_ridge(rank, ridge):
    rng = np.random.default_rng(7)
    n = 40
    x = rng.normal(size=(n, D_FEAT))
    a = rng.normal(size=(n, K_SIG))
    metric = BilinearMetric(D_FEAT, K_SIG, rank).double()
    with torch.no_grad():  # start far from the answer, so that every field must be overwritten
        metric.W.fill_(3.0)
        metric.L.fill_(-2.0)
        metric.b.fill_(123.0)
    metric.initialise(torch.from_numpy(x), torch.from_numpy(a), ridge=ridge)

    expected_w = np.linalg.solve(x.T @ x + ridge * np.eye(D_FEAT), x.T @ a)
    np.testing.assert_allclose(metric.W.detach().numpy(), expected_w, rtol=1e-9, atol=1e-12)
    r = metric.rank
    np.testing.assert_array_equal(metric.L.detach().numpy(), np.eye(r, K_SIG))

    residual = (x @ expected_w - a) @ np.eye(r, K_SIG).T
    d_pos = (residual**2).sum(1)
    # torch's median of an even-length tensor is the lower of the two middle values
    assert float(metric.b.detach()) == pytest.approx(np.sort(d_pos)[(n - 1) // 2], rel=1e-9)


def test_initialise_threshold_uses_negatives_when_given():
    rng = np.random.default_rng(8)
    n = 31  # odd: the median of the 62 pairs is the lower middle value
    x = rng.normal(size=(n, D_FEAT))
    a = rng.normal(size=(n, K_SIG))
    wrong = rng.normal(size=(n, K_SIG)) + 3.0  # far away: negatives have larger distances
    metric = BilinearMetric(D_FEAT, K_SIG).double()
    metric.initialise(
        torch.from_numpy(x),
        torch.from_numpy(a),
        ridge=1.0,
        negative_signatures=torch.from_numpy(wrong),
    )
    w = np.linalg.solve(x.T @ x + np.eye(D_FEAT), x.T @ a)
    d_pos = ((x @ w - a) ** 2).sum(1)
    d_neg = ((x @ w - wrong) ** 2).sum(1)
    pairs = np.sort(np.r_[d_pos, d_neg])
    assert float(metric.b.detach()) == pytest.approx(pairs[(2 * n - 1) // 2], rel=1e-9)
    # the threshold lies between the bulk of the positives and of the negatives
    assert np.median(d_pos) < float(metric.b.detach()) < np.median(d_neg)
    # ... and differs from the positive-only median
    assert float(metric.b.detach()) != pytest.approx(np.sort(d_pos)[(n - 1) // 2], rel=1e-3)


def test_initialise_float32_model_matches_float64_solution():
    """Features in float32: W is solved in float64 then cast, L is identity, b a finite median."""
    rng = np.random.default_rng(9)
    x = rng.normal(size=(60, D_FEAT)).astype(np.float32)
    a = rng.normal(size=(60, K_SIG)).astype(np.float32)
    metric = BilinearMetric(D_FEAT, K_SIG, rank=2)
    metric.initialise(torch.from_numpy(x), torch.from_numpy(a), ridge=2.0)
    x64, a64 = x.astype(np.float64), a.astype(np.float64)
    expected = np.linalg.solve(x64.T @ x64 + 2.0 * np.eye(D_FEAT), x64.T @ a64)
    assert metric.W.dtype == torch.float32
    np.testing.assert_allclose(metric.W.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(metric.L.detach().numpy(), np.eye(2, K_SIG, dtype=np.float32))
    assert np.isfinite(float(metric.b.detach()))
