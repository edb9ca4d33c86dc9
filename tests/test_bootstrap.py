"""The bootstrap of the protocol's intervals: plans, resampled metrics, paired comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from src.metrics import GZSLScores, gzsl_results
from src.metrics.bootstrap import (
    Credits,
    Plan,
    class_plan,
    compare,
    credits_from_scores,
    image_plan,
    interval,
    pooled,
    resample_metrics,
    search_plan,
    verdict,
)


def _credits(seen_acc, unseen_acc, zsl_acc=None) -> Credits:
    """One image per class, its credit the class's accuracy (no calibration, flat curves)."""
    seen_acc, unseen_acc = np.asarray(seen_acc, float), np.asarray(unseen_acc, float)
    zsl = unseen_acc if zsl_acc is None else np.asarray(zsl_acc, float)
    return Credits(
        seen_class=np.arange(len(seen_acc)),
        unseen_class=np.arange(len(unseen_acc)),
        zsl=zsl,
        gzsl_seen=seen_acc,
        gzsl_unseen=unseen_acc,
        cal_seen=seen_acc,
        cal_unseen=unseen_acc,
        curve_seen=np.stack([seen_acc, seen_acc * 0]).T,  # γ low: all seen; γ high: all unseen
        curve_unseen=np.stack([unseen_acc * 0, unseen_acc]).T,
    )


def test_a_hand_computed_class_resample():
    """Two resamples written out by hand: class multiplicities weight per-class accuracies."""
    credits = _credits(seen_acc=[1.0, 0.5], unseen_acc=[0.0, 1.0, 0.5])
    plan = Plan("classes", np.array([[2.0, 0.0], [1.0, 1.0]]), np.array([[0, 3, 0], [1, 1, 1.0]]))
    out = resample_metrics(credits, plan)
    # resample 1: seen classes {0, 0} → s = 1; unseen {1, 1, 1} → u = zsl = 1; H = 1
    # resample 2: s = 0.75, u = 0.5, H = 2 · 0.75 · 0.5 / 1.25 = 0.6
    np.testing.assert_allclose(out["gzsl_s"], [1.0, 0.75])
    np.testing.assert_allclose(out["gzsl_u"], [1.0, 0.5])
    np.testing.assert_allclose(out["zsl_acc"], [1.0, 0.5])
    np.testing.assert_allclose(out["gzsl_H"], [1.0, 0.6])
    # the curve (s, u): (s, 0) → (0, u): one trapezoid of area s · u / 2
    np.testing.assert_allclose(out["ausuc"], [0.5, 0.1875])


def test_the_bootstrap_distribution_of_two_classes_matches_its_enumeration():
    """Classes {right, wrong}: the mean is 1, ½, 0 with probabilities ¼, ½, ¼."""
    credits = _credits(seen_acc=[1.0], unseen_acc=[1.0, 0.0])
    zsl = resample_metrics(credits, class_plan(1, 2, 20000, seed=3))["zsl_acc"]
    for value, probability in ((1.0, 0.25), (0.5, 0.5), (0.0, 0.25)):
        assert abs(np.mean(zsl == value) - probability) < 0.015
    assert interval(zsl, 0.95) == (0.0, 1.0)


def test_class_plans_enumerate_like_the_exact_bootstrap():
    """Three unseen classes: the plan's frequencies of each multiset of classes approach the
    exact multinomial probabilities (27 ordered draws)."""
    plan = class_plan(1, 3, 30000, seed=0)
    exact: dict[tuple, float] = {}
    for draw in itertools.product(range(3), repeat=3):
        counts = tuple(np.bincount(draw, minlength=3))
        exact[counts] = exact.get(counts, 0) + 1 / 27
    seen = {}
    for row in plan.unseen.astype(int):
        seen[tuple(row)] = seen.get(tuple(row), 0) + 1 / plan.resamples
    for counts, probability in exact.items():
        assert abs(seen.get(counts, 0) - probability) < 0.01


def test_image_plans_draw_each_class_as_often_as_it_holds_images():
    classes = np.array([0, 0, 0, 1, 2, 2])
    plan = image_plan(classes, classes, 50, seed=1)
    for c, size in ((0, 3), (1, 1), (2, 2)):
        assert (plan.seen[:, classes == c].sum(axis=1) == size).all()


def test_pooled_rows_average_the_seeds_on_the_same_resamples():
    a, b = _credits([1.0], [1.0, 0.0]), _credits([1.0], [0.0, 1.0])
    plan = class_plan(1, 2, 500, seed=0)
    both = pooled([a, b], plan)
    np.testing.assert_allclose(both["zsl_acc"], 0.5)  # the seeds' errors cancel in each resample


def test_one_search_leaves_the_class_bootstrap_as_it_was():
    runs = [_credits([1.0, 0.5], [1.0, 0.0, 0.5]), _credits([0.5, 0.5], [0.0, 1.0, 1.0])]
    plan = class_plan(2, 3, 300, seed=4)
    alone = pooled(runs, plan)
    for name, values in pooled(runs, plan, search_plan(1, 300, seed=9)).items():
        np.testing.assert_array_equal(values, alone[name])
    # a row evaluated once (a reference) has no search to resample, whatever K
    one = pooled(runs[:1], plan, search_plan(2, 300, seed=9))
    np.testing.assert_array_equal(one["zsl_acc"], pooled(runs[:1], plan)["zsl_acc"])


def test_the_two_level_bootstrap_matches_its_exact_enumeration():
    """Two searches (one refit each) and three unseen classes. Exactly: the searches are drawn
    (2, 0), (1, 1), (0, 2) with probabilities ¼, ½, ¼, and independently the classes (27
    equally likely ordered draws); the value is the searches' weighted mean of their ZSL
    accuracies on the drawn classes. The plan's distribution approaches that one."""
    accuracies = [np.array([1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0])]
    runs = [_credits([1.0], acc) for acc in accuracies]
    exact: dict[float, float] = {}
    for searches, p_search in (((2, 0), 0.25), ((1, 1), 0.5), ((0, 2), 0.25)):
        for draw in itertools.product(range(3), repeat=3):
            classes = np.bincount(draw, minlength=3)
            pairs = zip(searches, accuracies, strict=True)
            value = sum(w * (classes @ acc) / 3 for w, acc in pairs) / 2
            key = round(float(value), 9)
            exact[key] = exact.get(key, 0.0) + p_search / 27
    resamples = 40000
    zsl = pooled(runs, class_plan(1, 3, resamples, 5), search_plan(2, resamples, 6))["zsl_acc"]
    drawn = np.round(zsl, 9)
    assert set(np.unique(drawn)) <= set(exact)
    for value, probability in exact.items():
        assert abs(np.mean(drawn == value) - probability) < 0.01, value
    mean = sum(v * p for v, p in exact.items())
    variance = sum((v - mean) ** 2 * p for v, p in exact.items())
    assert np.mean(zsl) == pytest.approx(mean, abs=0.005)
    assert np.var(zsl) == pytest.approx(variance, rel=0.05)
    # the searches add their own spread: wider than the classes alone, the searches pooled
    classes_only = pooled(runs, class_plan(1, 3, resamples, 5))["zsl_acc"]
    assert np.var(zsl) > 1.2 * np.var(classes_only)


def test_a_paired_comparison_of_a_constant_shift_is_better_and_certain():
    base = np.linspace(0.2, 0.8, 100)
    record = compare(base + 0.1, base, 0.1, 0.95)
    assert record["ci_low"] == pytest.approx(0.1) and record["ci_high"] == pytest.approx(0.1)
    assert record["share_positive"] == 1.0
    assert record["p_value"] == pytest.approx(2 / 101)  # every resample above 0: the floor
    assert verdict(record["ci_low"], record["ci_high"]) == "better"
    assert verdict(-0.1, 0.2) == "no detectable difference"
    assert verdict(-0.3, -0.01) == "worse"


def _random_scores(seed: int, ties: bool) -> GZSLScores:
    g = torch.Generator().manual_seed(seed)
    seen, unseen = torch.tensor([0, 2, 3, 5]), torch.tensor([1, 4, 6])
    labels_s = seen[torch.randint(0, 4, (40,), generator=g)]
    labels_u = unseen[torch.randint(0, 3, (30,), generator=g)]
    labels_s[:4], labels_u[:3] = seen, unseen  # every class holds images
    d_s = torch.rand(40, 7, generator=g)
    d_u = torch.rand(30, 7, generator=g)
    if ties:  # all-zero images: every class equally near
        d_s[::5] = 1.0
        d_u[::4] = 1.0
        d_u[1::7, 1] = d_u[1::7, 4]  # a 2-way unseen tie
    return GZSLScores(d_s, labels_s, d_u, labels_u, seen, unseen)


@pytest.mark.parametrize("ties", [False, True])
def test_every_multiplicity_one_reproduces_the_metrics(ties):
    scores = _random_scores(0, ties)
    credits = credits_from_scores(scores, 0.05)
    expected = gzsl_results(scores, 0.05)
    s_n, u_n = credits.sizes
    for plan in (
        Plan("classes", np.ones((1, s_n)), np.ones((1, u_n))),
        Plan("images", np.ones((1, 40), np.uint16), np.ones((1, 30), np.uint16)),
    ):
        out = resample_metrics(credits, plan)
        for metric in ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H", "gzsl_H_cal"):
            assert out[metric][0] == pytest.approx(expected[metric], abs=1e-12), metric
    classes = resample_metrics(credits, Plan("classes", np.ones((1, s_n)), np.ones((1, u_n))))
    assert classes["ausuc"][0] == pytest.approx(expected["ausuc"], abs=1e-12)
