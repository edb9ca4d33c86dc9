"""ZSL/GZSL metrics against plain-numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from src.metrics import (
    harmonic_mean,
    mean_class_accuracy,
    per_class_top1,
    predict,
)
from src.metrics.zsl import class_counts

NUM_CLASSES = 12
TARGET = np.array([1, 3, 4, 7, 9])


def _reference_per_class_mean(preds: np.ndarray, target: np.ndarray, classes: np.ndarray):
    accuracies = []
    for c in classes:
        mask = target == c
        if not mask.any():
            raise AssertionError("reference: empty class")
        accuracies.append(float((preds[mask] == c).mean()))
    return float(np.mean(accuracies)), accuracies


def _random_case(seed: int, n: int = 300):
    """Targets from TARGET; predictions anywhere in [0, 12), class 9 never predicted."""
    rng = np.random.default_rng(seed)
    target = rng.choice(TARGET, size=n)
    correct = rng.random(n) < 0.5
    preds = np.where(correct, target, rng.integers(0, NUM_CLASSES, size=n))
    preds[preds == 9] = 10  # class 10 is outside the target set
    assert (target == 9).any() and not (preds == 9).any()
    assert np.isin(preds, TARGET, invert=True).any()
    return preds, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_per_class_top1_matches_numpy(seed):
    preds, target = _random_case(seed)
    expected, per_class = _reference_per_class_mean(preds, target, TARGET)
    assert per_class[list(TARGET).index(9)] == 0.0
    got = per_class_top1(
        torch.from_numpy(preds), torch.from_numpy(target), torch.from_numpy(TARGET)
    )
    assert float(got) == pytest.approx(expected, abs=1e-12)
    # a class with no correct prediction counts with 0: averaging over the classes that
    # were predicted (torchmetrics' macro behaviour) gives a different, larger number
    predicted = [c for c in TARGET if (preds == c).any()]
    dropped, _ = _reference_per_class_mean(preds, target, np.array(predicted))
    assert dropped > float(got) + 1e-3


def test_per_class_top1_hand_example():
    # class 0: 2/3 correct, class 2: 0/1 (never predicted), class 5: 1/2 → mean 7/18
    target = torch.tensor([0, 0, 0, 2, 5, 5])
    preds = torch.tensor([0, 0, 4, 0, 5, 8])
    got = per_class_top1(preds, target, torch.tensor([0, 2, 5]))
    assert float(got) == pytest.approx((2 / 3 + 0 + 1 / 2) / 3, abs=1e-12)


def test_per_class_top1_is_not_per_sample_accuracy():
    target = torch.tensor([0] * 9 + [1])
    preds = torch.tensor([0] * 9 + [0])
    got = per_class_top1(preds, target, torch.tensor([0, 1]))
    assert float(got) == pytest.approx(0.5)  # per-sample accuracy would be 0.9


def test_target_class_without_samples_raises():
    target = torch.tensor([0, 0, 1])
    preds = torch.tensor([0, 1, 1])
    with pytest.raises(ValueError, match=r"\[4\]"):
        per_class_top1(preds, target, torch.tensor([0, 1, 4]))
    correct, total = class_counts(preds, target, 6)
    with pytest.raises(ValueError, match=r"\[2, 5\]"):
        mean_class_accuracy(correct, total, torch.tensor([0, 2, 5]))


def test_class_counts_and_mean_class_accuracy_match_numpy():
    preds, target = _random_case(3)
    correct, total = class_counts(torch.from_numpy(preds), torch.from_numpy(target), NUM_CLASSES)
    np.testing.assert_array_equal(total.numpy(), np.bincount(target, minlength=NUM_CLASSES))
    np.testing.assert_array_equal(
        correct.numpy(), np.bincount(target[preds == target], minlength=NUM_CLASSES)
    )
    expected, _ = _reference_per_class_mean(preds, target, TARGET)
    got = mean_class_accuracy(correct, total, torch.from_numpy(TARGET))
    assert float(got) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_predict_matches_numpy_argmin_over_candidates(seed):
    rng = np.random.default_rng(seed)
    distances = rng.random((50, NUM_CLASSES))
    candidates = np.array([7, 2, 11, 5])  # unsorted on purpose
    expected = candidates[np.argmin(distances[:, candidates], axis=1)]
    got = predict(torch.from_numpy(distances), torch.from_numpy(candidates))
    np.testing.assert_array_equal(got.numpy(), expected)
    # a non-candidate column with the smallest distance is never predicted
    distances[:, 0] = -1.0
    got = predict(torch.from_numpy(distances), torch.from_numpy(candidates))
    np.testing.assert_array_equal(got.numpy(), expected)
    all_classes = predict(torch.from_numpy(distances), torch.arange(NUM_CLASSES))
    assert (all_classes == 0).all()


@pytest.mark.parametrize(
    ("s", "u"), [(0.5, 0.5), (0.8, 0.2), (0.3, 0.0), (1.0, 1.0), (0.0, 0.7), (0.61, 0.42)]
)
def test_harmonic_mean(s, u):
    expected = 0.0 if s + u == 0 else 2 * s * u / (s + u)
    assert float(harmonic_mean(s, u)) == pytest.approx(expected, abs=1e-15)
    got = harmonic_mean(torch.tensor(s), torch.tensor(u))
    assert float(got) == pytest.approx(expected, abs=1e-7)


def test_harmonic_mean_zero_and_dtype():
    got = harmonic_mean(0.0, 0.0)
    assert float(got) == 0.0
    assert not torch.isnan(got)
    assert got.dtype == torch.float64
    assert float(harmonic_mean(torch.tensor(0.0), torch.tensor(0.0))) == 0.0
    # symmetric
    assert float(harmonic_mean(0.2, 0.9)) == float(harmonic_mean(0.9, 0.2))
