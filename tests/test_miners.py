"""The eight negative miners: hand-made selections, the shared contract, sampling distributions."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hydra_utils import strategy_classes

from src.mining import (
    CorrelationMiner,
    HardestMiner,
    LossWeightedMiner,
    MiningInputs,
    NegativeMiner,
    RandomFixedMiner,
    RandomMiner,
    SemiHardMiner,
    UncertaintyCorrelationMiner,
    UncertaintyMiner,
)

ALL_MINERS = list(strategy_classes().values())
SAMPLING_MINERS = [
    RandomMiner,
    RandomFixedMiner,
    CorrelationMiner,
    UncertaintyMiner,
    UncertaintyCorrelationMiner,
    LossWeightedMiner,
]
TEMPERATURE_KEYS = {
    CorrelationMiner: ["temperature"],
    UncertaintyMiner: ["temperature"],
    UncertaintyCorrelationMiner: ["temperature", "correlation_temperature"],
}


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(distances, positives, threshold=0.5, similarity=None, beta=1.0) -> MiningInputs:
    distances = torch.as_tensor(distances, dtype=torch.float64)
    num_classes = distances.shape[1]
    if similarity is None:
        similarity = torch.eye(num_classes, dtype=torch.float64)
    return MiningInputs(
        distances,
        torch.as_tensor(positives, dtype=torch.long),
        threshold,
        torch.as_tensor(similarity, dtype=torch.float64),
        beta,
    )


def _random_similarity(num_classes: int, seed: int) -> torch.Tensor:
    sig = torch.randn(num_classes, 4, generator=_gen(seed), dtype=torch.float64)
    sig = torch.nn.functional.normalize(sig, dim=1)
    return sig @ sig.T


def _random_inputs(n: int, num_classes: int, seed: int = 0) -> MiningInputs:
    g = _gen(seed)
    distances = torch.rand(n, num_classes, generator=g, dtype=torch.float64) * 4.0
    positives = torch.randint(0, num_classes, (n,), generator=g)
    return _inputs(distances, positives, 2.0, _random_similarity(num_classes, seed + 1))


def _rows(out: torch.Tensor) -> list[set[int]]:
    return [set(row) for row in out.tolist()]


# --------------------------------------------------------------------------- hand-made cases
def test_hardest_skips_the_positive_and_takes_the_smallest():
    distances = [
        [0.10, 0.50, 0.30, 0.90, 0.20, 0.80],  # positive 0 is the smallest of all
        [0.70, 0.60, 0.05, 0.40, 0.30, 0.90],  # positive 2 is the smallest of all
        [0.50, 0.40, 0.30, 0.20, 0.10, 0.00],  # positive 4 is the second smallest
    ]
    out = HardestMiner(num_negatives=2).mine(_inputs(distances, [0, 2, 4]), _gen())
    assert out.shape == (3, 2)
    assert _rows(out) == [{4, 2}, {4, 3}, {5, 3}]


def test_hardest_k1_and_k5():
    distances = [[0.3, 0.1, 0.2, 0.6, 0.5, 0.4]]
    assert HardestMiner(num_negatives=1).mine(_inputs(distances, [1]), _gen()).tolist() == [[2]]
    out = HardestMiner(num_negatives=5).mine(_inputs(distances, [1]), _gen())
    assert _rows(out) == [{0, 2, 3, 4, 5}]


def test_semi_hard_takes_the_classes_just_beyond_the_positive():
    distances = [
        [0.10, 0.45, 0.40, 0.90, 0.20, 0.60],  # D_pos = 0.40: beyond are 1 (0.45), 5 (0.60), 3
        [0.00, 0.95, 0.85, 0.80, 0.10, 0.70],  # D_pos = 0.10 (class 4): nearest beyond 5, 3
        [0.40, 0.50, 0.40, 0.41, 0.05, 0.30],  # tie with D_pos (class 0) is not "beyond"
    ]
    out = SemiHardMiner(num_negatives=2).mine(_inputs(distances, [2, 4, 2]), _gen())
    assert _rows(out) == [{1, 5}, {5, 3}, {3, 1}]


def test_semi_hard_fills_with_violators_closest_to_the_positive():
    distances = [
        [0.10, 0.30, 0.50, 0.35, 0.90, 0.05],  # D_pos = 0.50: one beyond (4), then 3 (0.35), 1
        [0.10, 0.20, 0.30, 0.40, 0.50, 0.60],  # D_pos = 0.60 is the largest: 4, 3, 2
        [0.80, 0.20, 0.70, 0.40, 0.50, 0.60],  # D_pos = 0.60: beyond 2 (0.70), 0; then 4
    ]
    out = SemiHardMiner(num_negatives=3).mine(_inputs(distances, [2, 5, 5]), _gen())
    assert _rows(out) == [{4, 3, 1}, {4, 3, 2}, {2, 0, 4}]
    # K = 1 never picks a violator when a semi-hard class exists
    out = SemiHardMiner(num_negatives=1).mine(_inputs(distances, [2, 5, 5]), _gen())
    assert out.tolist() == [[4], [4], [2]]


# ----------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("miner_cls", ALL_MINERS)
@pytest.mark.parametrize("k", [1, 3, 6])
def test_contract_shape_distinct_never_positive(miner_cls, k):
    num_classes, n = 7, 300
    inputs = _random_inputs(n, num_classes, seed=k)
    out = miner_cls(num_negatives=k).mine(inputs, _gen(1))
    assert out.shape == (n, k)
    assert out.dtype == torch.long
    assert ((out >= 0) & (out < num_classes)).all()
    assert not (out == inputs.positives[:, None]).any()
    assert (out.sort(1).values.diff(dim=1) != 0).all()  # K distinct columns per row
    if k == num_classes - 1:
        everything_but_positive = [
            set(range(num_classes)) - {int(y)} for y in inputs.positives.tolist()
        ]
        assert _rows(out) == everything_but_positive


@pytest.mark.parametrize("miner_cls", ALL_MINERS)
def test_contract_holds_on_extreme_scores(miner_cls):
    """Huge, tiny and tied distances still give K distinct non-positive classes."""
    distances = torch.tensor(
        [
            [0.0, 1e6, 1e6, 1e6, 0.0, 1e-9],
            [5.0, 5.0, 5.0, 5.0, 5.0, 5.0],
            [1e8, 0.0, 3e7, 1e8, 2e8, 1e8],
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ]
    ).repeat(50, 1)
    positives = torch.tensor([0, 3, 1, 5]).repeat(50)
    inputs = _inputs(distances, positives, threshold=2.0, similarity=_random_similarity(6, 2))
    for k in (1, 4, 5):
        out = miner_cls(num_negatives=k, **_small_temperatures(miner_cls)).mine(inputs, _gen(3))
        assert out.shape == (200, k)
        assert not (out == positives[:, None]).any()
        assert (out.sort(1).values.diff(dim=1) != 0).all()


def _small_temperatures(miner_cls) -> dict:
    return {key: 1e-3 for key in TEMPERATURE_KEYS.get(miner_cls, [])}


@pytest.mark.parametrize("miner_cls", ALL_MINERS)
def test_same_seed_same_output(miner_cls):
    inputs = _random_inputs(200, 8, seed=5)
    miner = miner_cls(num_negatives=3)
    assert torch.equal(miner.mine(inputs, _gen(11)), miner.mine(inputs, _gen(11)))


@pytest.mark.parametrize("miner_cls", SAMPLING_MINERS)
def test_different_seed_different_output(miner_cls):
    inputs = _random_inputs(200, 8, seed=5)
    miner = miner_cls(num_negatives=3)
    assert not torch.equal(miner.mine(inputs, _gen(11)), miner.mine(inputs, _gen(12)))


@pytest.mark.parametrize("miner_cls", [HardestMiner, SemiHardMiner])
def test_deterministic_miners_ignore_the_generator(miner_cls):
    inputs = _random_inputs(200, 8, seed=6)
    miner = miner_cls(num_negatives=3)
    assert torch.equal(miner.mine(inputs, _gen(1)), miner.mine(inputs, _gen(2)))


def test_random_fixed_is_random_that_draws_once():
    assert issubclass(RandomFixedMiner, RandomMiner)
    assert RandomFixedMiner.draws_once and not RandomMiner.draws_once
    assert [cls for cls in ALL_MINERS if cls.draws_once] == [RandomFixedMiner]


# ------------------------------------------------------------------------- validation errors
@pytest.mark.parametrize("miner_cls", ALL_MINERS)
@pytest.mark.parametrize(
    ("key", "value"),
    [("num_negatives", 0), ("num_negatives", -2)],
)
def test_invalid_knobs_raise(miner_cls, key, value):
    with pytest.raises(ValueError, match=rf"miner\.{key}={value}\b"):
        miner_cls(**{key: value})


@pytest.mark.parametrize("miner_cls", list(TEMPERATURE_KEYS))
@pytest.mark.parametrize("value", [0, -0.5])
def test_invalid_temperature_raises(miner_cls, value):
    with pytest.raises(ValueError, match=rf"miner\.temperature={value}\b"):
        miner_cls(temperature=value)


def test_invalid_correlation_temperature_names_its_key():
    with pytest.raises(ValueError, match=r"miner\.correlation_temperature=0\b"):
        UncertaintyCorrelationMiner(correlation_temperature=0)


def test_invalid_correlation_temperature_raises():
    with pytest.raises(ValueError, match=r"=0\b"):
        UncertaintyCorrelationMiner(correlation_temperature=0)


def test_valid_knobs_are_stored():
    miner = UncertaintyCorrelationMiner(
        num_negatives=4,
        temperature=0.5,
        correlation_temperature=0.2,
    )
    assert miner.num_negatives == 4
    assert (miner.temperature, miner.correlation_temperature) == (0.5, 0.2)


@pytest.mark.parametrize("miner_cls", ALL_MINERS)
def test_check_num_classes(miner_cls):
    miner = miner_cls(num_negatives=5)
    miner.check_num_classes(6)  # K = S − 1 is allowed
    miner.check_num_classes(100)
    for num_seen in (5, 3, 1):
        with pytest.raises(ValueError, match=r"miner\.num_negatives=5\b"):
            miner.check_num_classes(num_seen)
    # mine() applies the same check to the width of the distance matrix
    with pytest.raises(ValueError, match=r"miner\.num_negatives=5\b"):
        miner.mine(_random_inputs(4, 5), _gen())


# ------------------------------------------------------------------ sampling distributions
NUM_ROWS = 200_000
TOL = 0.008  # standard error of a frequency with 200k draws is ≤ 0.0012

ROW_D = [0.2, 1.0, 0.5, 2.5, 1.4, 3.5]  # distances of one image to 6 seen classes
POSITIVE = 2
ROW_B = 1.5


def _softmax_without_positive(log_weights: list[float]) -> list[float]:
    weights = [0.0 if c == POSITIVE else math.exp(w) for c, w in enumerate(log_weights)]
    total = sum(weights)
    return [w / total for w in weights]


def _inclusion_probabilities(probs: list[float], k: int) -> list[float]:
    """P(c ∈ sample) for k successive draws without replacement (Plackett-Luce), enumerated."""
    out = [0.0] * len(probs)
    candidates = [c for c, p in enumerate(probs) if p > 0]
    for order in itertools.permutations(candidates, k):
        p, remaining = 1.0, 1.0
        for c in order:
            p *= probs[c] / remaining
            remaining -= probs[c]
        for c in order:
            out[c] += p
    return out


def _draw(miner: NegativeMiner, threshold=ROW_B, similarity=None, beta=1.0, seed=0):
    distances = torch.tensor([ROW_D], dtype=torch.float64).repeat(NUM_ROWS, 1)
    positives = torch.full((NUM_ROWS,), POSITIVE)
    return miner.mine(_inputs(distances, positives, threshold, similarity, beta), _gen(seed))


def _frequencies(column: torch.Tensor) -> list[float]:
    return (torch.bincount(column.flatten(), minlength=len(ROW_D)).double() / NUM_ROWS).tolist()


def _assert_close(freq: list[float], expected: list[float], tol: float = TOL) -> None:
    assert freq[POSITIVE] == 0.0
    for c, (f, e) in enumerate(zip(freq, expected, strict=True)):
        assert abs(f - e) < tol, f"class {c}: frequency {f:.4f}, expected {e:.4f}"


def _check_distribution(miner_factory, log_weights, similarity=None, beta=1.0, uniform_ok=False):
    expected = _softmax_without_positive(log_weights)
    if not uniform_ok:  # the test must be able to tell the distribution from a uniform one
        assert max(abs(p - 0.2) for c, p in enumerate(expected) if c != POSITIVE) > 0.05
    # K = 1: the single draw follows the softmax of the log-weights over c ≠ y
    out = _draw(miner_factory(1), similarity=similarity, beta=beta)
    _assert_close(_frequencies(out[:, 0]), expected)
    # K = 3: the first (largest-key) draw follows the same law; the set follows Plackett-Luce
    out = _draw(miner_factory(3), similarity=similarity, beta=beta, seed=1)
    _assert_close(_frequencies(out[:, 0]), expected)
    _assert_close(_frequencies(out), _inclusion_probabilities(expected, 3))


@pytest.mark.parametrize("miner_cls", [RandomMiner, RandomFixedMiner])
def test_random_is_uniform_over_other_classes(miner_cls):
    _check_distribution(lambda k: miner_cls(num_negatives=k), [0.0] * 6, uniform_ok=True)


def test_correlation_distribution():
    similarity = _random_similarity(6, seed=21)
    temperature = 0.3
    log_w = [float(similarity[POSITIVE, c]) / temperature for c in range(6)]
    _check_distribution(
        lambda k: CorrelationMiner(num_negatives=k, temperature=temperature), log_w, similarity
    )


def test_uncertainty_distribution():
    temperature = 0.7
    log_w = [-abs(d - ROW_B) / temperature for d in ROW_D]
    _check_distribution(lambda k: UncertaintyMiner(num_negatives=k, temperature=temperature), log_w)


def test_uncertainty_correlation_distribution_is_the_product():
    similarity = _random_similarity(6, seed=22)
    t_u, t_c = 1.2, 0.5
    log_w = [
        -abs(d - ROW_B) / t_u + float(similarity[POSITIVE, c]) / t_c for c, d in enumerate(ROW_D)
    ]
    _check_distribution(
        lambda k: UncertaintyCorrelationMiner(
            num_negatives=k, temperature=t_u, correlation_temperature=t_c
        ),
        log_w,
        similarity,
    )


@pytest.mark.parametrize("beta", [1.0, 3.0])
def test_loss_weighted_distribution_is_proportional_to_the_negative_loss(beta):
    losses = [math.log(1 + math.exp(-beta * (d - ROW_B))) / beta for d in ROW_D]
    log_w = [math.log(v) for v in losses]
    # β matters: the two laws differ enough for the tolerance to tell them apart
    other = 3.0 if beta == 1.0 else 1.0
    other_w = [math.log(math.log(1 + math.exp(-other * (d - ROW_B))) / other) for d in ROW_D]
    gap = [
        abs(a - b)
        for a, b in zip(
            _softmax_without_positive(log_w), _softmax_without_positive(other_w), strict=True
        )
    ]
    assert max(gap) > 3 * TOL
    _check_distribution(lambda k: LossWeightedMiner(num_negatives=k), log_w, beta=beta)


@pytest.mark.parametrize(("dtype", "offset"), [(torch.float32, 200.0), (torch.float64, 800.0)])
def test_loss_weighted_far_tail_uses_the_asymptote(dtype, offset):
    """Where softplus(margin) underflows to 0, classes still rank by log-loss ≈ margin."""
    row = [0.0, offset, offset + 1.0, offset + 20.0]
    distances = torch.tensor([row], dtype=dtype).repeat(NUM_ROWS, 1)
    positives = torch.zeros(NUM_ROWS, dtype=torch.long)
    assert float(torch.nn.functional.softplus(-distances[0, 1])) == 0.0  # the underflow is real
    inputs = MiningInputs(distances, positives, 0.0, torch.eye(4, dtype=dtype), 1.0)
    out = LossWeightedMiner(num_negatives=1).mine(inputs, _gen(4))
    freq = (torch.bincount(out[:, 0], minlength=4).double() / NUM_ROWS).tolist()
    # p ∝ exp(−offset), exp(−offset − 1), exp(−offset − 20)
    z = 1 + math.exp(-1) + math.exp(-20)
    expected = [0.0, 1 / z, math.exp(-1) / z, math.exp(-20) / z]
    for f, e in zip(freq, expected, strict=True):
        assert abs(f - e) < TOL


def test_sampling_is_shift_invariant_for_tiny_temperatures():
    """p ∝ exp(−|D − b|/T) with T = 1e-3: the class nearest to b must win almost surely."""
    distances = torch.tensor([[20.0, 0.0, 35.0, 50.0, 60.0, 80.0]]).repeat(20_000, 1)
    inputs = _inputs(distances, torch.ones(20_000, dtype=torch.long), threshold=0.0)
    out = UncertaintyMiner(num_negatives=1, temperature=1e-3).mine(inputs, _gen(0))
    assert (out[:, 0] == 0).float().mean() > 0.99
