"""The generalised logistic pair objective of P2, against hand arithmetic."""

from __future__ import annotations

import math

import pytest
import torch

from src.models.objective import metric_objective, pair_loss

# Two images, K = 2 negatives each.
D_POS = [0.5, 2.0]
D_NEG = [[1.0, 3.0], [0.2, 4.0]]
THRESHOLD = 1.5
ATT_ERR = [0.3, 0.7]
LAMBDA, W_NEG = 0.1, 0.5


def _ell(d: float, t: int, beta: float) -> float:
    return math.log(1.0 + math.exp(beta * t * (d - THRESHOLD))) / beta


def _call(beta: float, d_pos=D_POS, d_neg=D_NEG, threshold=THRESHOLD, requires_grad=False):
    pos = torch.tensor(d_pos, dtype=torch.float64, requires_grad=requires_grad)
    neg = torch.tensor(d_neg, dtype=torch.float64, requires_grad=requires_grad)
    b = torch.tensor(threshold, dtype=torch.float64, requires_grad=requires_grad)
    att = torch.tensor(ATT_ERR, dtype=torch.float64)
    parts = metric_objective(
        pos, neg, b, att, beta=beta, negative_weight=W_NEG, attribute_weight=LAMBDA
    )
    return parts, pos, neg, b


def test_hand_computed_loss_beta_1():
    parts, *_ = _call(beta=1.0)
    # positives: (1/1)·log(1 + exp(D − b))
    pos = (math.log(1 + math.exp(0.5 - 1.5)) + math.log(1 + math.exp(2.0 - 1.5))) / 2
    # negatives: log(1 + exp(−(D − b)))
    neg = (
        math.log(1 + math.exp(-(1.0 - 1.5)))
        + math.log(1 + math.exp(-(3.0 - 1.5)))
        + math.log(1 + math.exp(-(0.2 - 1.5)))
        + math.log(1 + math.exp(-(4.0 - 1.5)))
    ) / 4
    att = (0.3 + 0.7) / 2
    assert float(parts["loss_pos"]) == pytest.approx(pos, rel=1e-12)
    assert float(parts["loss_neg"]) == pytest.approx(neg, rel=1e-12)
    assert float(parts["loss_att"]) == pytest.approx(att, rel=1e-12)
    assert float(parts["loss"]) == pytest.approx(pos + 0.5 * neg + 0.1 * att, rel=1e-12)
    # spelled-out number, guarding against a wrong reference helper too
    assert float(parts["loss"]) == pytest.approx(1.0430929, abs=1e-6)


def test_hand_computed_loss_beta_2():
    parts, *_ = _call(beta=2.0)
    pos = (
        (math.log(1 + math.exp(2 * (0.5 - 1.5))) + math.log(1 + math.exp(2 * (2.0 - 1.5)))) / 2 / 2
    )
    neg = (
        (
            math.log(1 + math.exp(-2 * (1.0 - 1.5)))
            + math.log(1 + math.exp(-2 * (3.0 - 1.5)))
            + math.log(1 + math.exp(-2 * (0.2 - 1.5)))
            + math.log(1 + math.exp(-2 * (4.0 - 1.5)))
        )
        / 4
        / 2
    )
    att = 0.5
    assert float(parts["loss_pos"]) == pytest.approx(pos, rel=1e-12)
    assert float(parts["loss_neg"]) == pytest.approx(neg, rel=1e-12)
    assert float(parts["loss"]) == pytest.approx(pos + W_NEG * neg + LAMBDA * att, rel=1e-12)


@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 5.0])
def test_pair_loss_matches_formula_elementwise(beta):
    d = torch.linspace(-3.0, 6.0, 19, dtype=torch.float64)
    b = torch.tensor(1.25, dtype=torch.float64)
    for is_positive, t in ((True, 1), (False, -1)):
        got = pair_loss(d, b, is_positive, beta)
        for di, gi in zip(d.tolist(), got.tolist(), strict=True):
            assert gi == pytest.approx(math.log(1 + math.exp(beta * t * (di - 1.25))) / beta)


def test_loss_is_log2_over_beta_at_the_threshold():
    for beta in (1.0, 2.0, 4.0):
        got = pair_loss(torch.tensor([1.5]), torch.tensor(1.5), True, beta)
        assert float(got) == pytest.approx(math.log(2) / beta, rel=1e-6)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_well_separated_pairs_give_near_zero_loss(beta):
    parts, *_ = _call(beta, d_pos=[0.0, 1.0], d_neg=[[60.0, 80.0], [70.0, 99.0]], threshold=30.0)
    assert float(parts["loss_pos"]) < 1e-12
    assert float(parts["loss_neg"]) < 1e-12
    # only the attribute term remains
    assert float(parts["loss"]) == pytest.approx(LAMBDA * 0.5, rel=1e-9)


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_badly_separated_pairs_give_linear_loss_without_overflow(beta):
    """Far on the wrong side ℓ ≈ |D − b|: softplus must not overflow to inf."""
    parts, *_ = _call(beta, d_pos=[1000.0, 1000.0], d_neg=[[0.0, 0.0], [0.0, 0.0]], threshold=10.0)
    assert float(parts["loss_pos"]) == pytest.approx(990.0, rel=1e-9)
    assert float(parts["loss_neg"]) == pytest.approx(math.log(1 + math.exp(10 * beta)) / beta)
    assert math.isfinite(float(parts["loss"]))


@pytest.mark.parametrize("beta", [1.0, 2.0])
def test_gradients_pull_positives_down_and_push_negatives_up(beta):
    parts, pos, neg, b = _call(beta, requires_grad=True)
    parts["loss"].backward()
    # gradient descent moves D against the gradient: positives must decrease, negatives increase
    assert (pos.grad > 0).all()
    assert (neg.grad < 0).all()
    # exact values: dℓ_pos/dD = σ(β(D − b)) / n_pos, dℓ_neg/dD = −σ(−β(D − b)) · w_neg / n_neg
    sig = lambda z: 1.0 / (1.0 + math.exp(-z))  # noqa: E731
    for d, g in zip(D_POS, pos.grad.tolist(), strict=True):
        assert g == pytest.approx(sig(beta * (d - THRESHOLD)) / 2, rel=1e-12)
    for d, g in zip([d for row in D_NEG for d in row], neg.grad.flatten().tolist(), strict=True):
        assert g == pytest.approx(-W_NEG * sig(-beta * (d - THRESHOLD)) / 4, rel=1e-12)
    # the threshold gets the opposite pulls: dE/db = −Σ pos grads − Σ neg grads
    assert float(b.grad) == pytest.approx(-float(pos.grad.sum()) - float(neg.grad.sum()), rel=1e-12)


def test_negative_weight_zero_and_attribute_weight_zero():
    pos = torch.tensor(D_POS, dtype=torch.float64)
    neg = torch.tensor(D_NEG, dtype=torch.float64)
    att = torch.tensor(ATT_ERR, dtype=torch.float64)
    parts = metric_objective(
        pos, neg, torch.tensor(THRESHOLD), att, beta=1.0, negative_weight=0.0, attribute_weight=0.0
    )
    assert float(parts["loss"]) == pytest.approx(float(parts["loss_pos"]), rel=1e-12)
