"""Calibrated GZSL, AUSUC, top-k ZSL and the per-class reports, against plain-numpy references."""

from __future__ import annotations

import logging

import lightning as L
import numpy as np
import pytest
import torch

from src.data.synthetic import SyntheticDataModule
from src.evaluation.gamma import TestGammaFromValidation
from src.evaluation.reports import write_eval_reports
from src.metrics import (
    Evaluation,
    GZSLMetrics,
    GZSLScores,
    ausuc,
    calibrated_predictions,
    choose_gamma,
    gzsl_results,
    gzsl_sweep,
    harmonic_mean,
    per_class_rows,
    per_class_top1,
    per_class_topk,
    predict,
    seen_unseen_curve,
    zsl_confusion,
)
from src.models import ESZSLClassifier

SEEN = np.array([0, 2, 3, 5, 7, 8, 10])
UNSEEN = np.array([1, 4, 6, 9, 11])
NUM_CLASSES = 12
NEVER_PREDICTED = (5, 9)  # one seen and one unseen class whose column is always far


# ------------------------------------------------------------------------ numpy references
def np_calibrated(d: np.ndarray, seen: np.ndarray, candidates: np.ndarray, gamma: float):
    penalised = d[:, candidates] + gamma * np.isin(candidates, seen)
    return candidates[penalised.argmin(axis=1)]


def np_per_class_mean(preds: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> float:
    return float(np.mean([(preds[labels == c] == c).mean() for c in classes]))


def np_h(s: float, u: float) -> float:
    return 0.0 if s + u == 0 else 2 * s * u / (s + u)


def np_sweep(case: dict, gammas) -> np.ndarray:
    """(G × 3) s, u, H by brute force: calibrated argmin, then per-class means."""
    candidates = np.concatenate([SEEN, UNSEEN])
    rows = []
    for gamma in gammas:
        s = np_per_class_mean(
            np_calibrated(case["d_s"], SEEN, candidates, gamma), case["y_s"], SEEN
        )
        u = np_per_class_mean(
            np_calibrated(case["d_u"], SEEN, candidates, gamma), case["y_u"], UNSEEN
        )
        rows.append((s, u, np_h(s, u)))
    return np.array(rows)


def np_critical(case: dict) -> np.ndarray:
    d = np.concatenate([case["d_s"], case["d_u"]])
    return np.unique(d[:, UNSEEN].min(1) - d[:, SEEN].min(1))


def np_topk(d: np.ndarray, labels: np.ndarray, candidates: np.ndarray, k: int) -> float:
    hits = []
    for row, label in zip(d, labels, strict=True):
        nearest = candidates[np.argsort(row[candidates], kind="stable")[:k]]
        hits.append(label in nearest)
    hits = np.array(hits)
    return float(np.mean([hits[labels == c].mean() for c in candidates]))


def random_case(seed: int, n_seen: int = 90, n_unseen: int = 70) -> dict:
    """Random distances; every class has images; classes 5 and 9 are never predicted."""
    rng = np.random.default_rng(seed)
    y_s = np.concatenate([SEEN, rng.choice(SEEN, n_seen - len(SEEN))])
    y_u = np.concatenate([UNSEEN, rng.choice(UNSEEN, n_unseen - len(UNSEEN))])

    def distances(labels):
        d = rng.random((len(labels), NUM_CLASSES)) * 2.0
        d[np.arange(len(labels)), labels] -= rng.random(len(labels)) * 1.2  # some signal
        d[:, list(NEVER_PREDICTED)] += 10.0
        return d

    return {"d_s": distances(y_s), "y_s": y_s, "d_u": distances(y_u), "y_u": y_u}


def as_torch(case: dict) -> GZSLScores:
    """The case as the scores the sweep functions take."""
    t = {k: torch.from_numpy(v) for k, v in case.items()}
    seen, unseen = torch.from_numpy(SEEN), torch.from_numpy(UNSEEN)
    return GZSLScores(t["d_s"], t["y_s"], t["d_u"], t["y_u"], seen, unseen)


def parts(case: dict) -> tuple[torch.Tensor, ...]:
    """(d_s, y_s, d_u, y_u, seen, unseen) of the case, as tensors."""
    sc = as_torch(case)
    return (sc.seen_distances, sc.seen_labels, sc.unseen_distances, sc.unseen_labels,
            sc.seen_classes, sc.unseen_classes)  # fmt: skip


@pytest.fixture(params=[0, 1, 2])
def case(request) -> dict:
    return random_case(request.param)


# ------------------------------------------------------------------------------- tests
def test_calibrated_predictions_match_numpy(case):
    d = torch.from_numpy(case["d_u"])
    candidates = np.concatenate([SEEN, UNSEEN])
    for gamma in (-1.3, -0.2, 0.0, 0.37, 2.5):
        got = calibrated_predictions(d, torch.from_numpy(SEEN), torch.from_numpy(candidates), gamma)
        np.testing.assert_array_equal(
            got.numpy(), np_calibrated(case["d_u"], SEEN, candidates, gamma)
        )
    # a subset of candidates, in another order
    subset = np.array([11, 3, 6, 0])
    got = calibrated_predictions(d, torch.from_numpy(SEEN), torch.from_numpy(subset), 0.4)
    np.testing.assert_array_equal(got.numpy(), np_calibrated(case["d_u"], SEEN, subset, 0.4))


def test_gzsl_sweep_matches_numpy_including_never_predicted_classes(case):
    gammas = np.random.default_rng(5).uniform(-2.5, 2.5, 40)
    s, u, h = gzsl_sweep(as_torch(case), torch.from_numpy(gammas))
    expected = np_sweep(case, gammas)
    np.testing.assert_allclose(np.stack([s, u, h], 1), expected, atol=1e-12)
    candidates = np.concatenate([SEEN, UNSEEN])
    for gamma in gammas:  # the never-predicted classes really are never predicted
        preds = np_calibrated(np.concatenate([case["d_s"], case["d_u"]]), SEEN, candidates, gamma)
        assert not np.isin(preds, NEVER_PREDICTED).any()


def test_results_do_not_depend_on_the_order_of_the_images(case):
    """As when DDP gathers the images rank by rank: every number is bit-identical."""
    args = as_torch(case)
    d_s, y_s, d_u, y_u, seen, unseen = parts(case)
    rng = np.random.default_rng(3)
    ps, pu = rng.permutation(len(case["y_s"])), rng.permutation(len(case["y_u"]))
    shuffled = GZSLScores(d_s[ps], y_s[ps], d_u[pu], y_u[pu], seen, unseen)
    gammas = torch.linspace(-2, 2, 101, dtype=torch.float64)
    for a, b in zip(gzsl_sweep(args, gammas), gzsl_sweep(shuffled, gammas), strict=True):
        assert torch.equal(a, b)
    assert float(ausuc(args)) == float(ausuc(shuffled))
    assert choose_gamma(args) == choose_gamma(shuffled)
    assert gzsl_results(args, 0.3) == gzsl_results(shuffled, 0.3)


def test_gamma_zero_reproduces_the_uncalibrated_metrics(case):
    d_s, y_s, d_u, y_u, seen, unseen = parts(case)
    s, u, h = gzsl_sweep(as_torch(case), [0.0])
    candidates = torch.cat([seen, unseen])
    s_plain = per_class_top1(predict(d_s, candidates), y_s, seen)
    u_plain = per_class_top1(predict(d_u, candidates), y_u, unseen)
    assert float(s[0]) == pytest.approx(float(s_plain), abs=1e-12)
    assert float(u[0]) == pytest.approx(float(u_plain), abs=1e-12)
    assert float(h[0]) == pytest.approx(float(harmonic_mean(s_plain, u_plain)), abs=1e-12)


def test_large_gamma_predicts_every_image_unseen_and_negative_gamma_every_image_seen(case):
    d_s, _, d_u, y_u, seen, unseen = parts(case)
    candidates = torch.cat([seen, unseen])
    preds = calibrated_predictions(torch.cat([d_s, d_u]), seen, candidates, 1e6)
    assert bool(torch.isin(preds, unseen).all())
    s, u, h = gzsl_sweep(as_torch(case), [1e6, -1e6])
    zsl = float(per_class_top1(predict(d_u, unseen), y_u, unseen))
    assert float(s[0]) == 0.0 and float(h[0]) == 0.0
    assert float(u[0]) == pytest.approx(zsl, abs=1e-12)  # all unseen: u is the ZSL accuracy
    assert float(u[1]) == 0.0 and float(s[1]) > 0.0


def test_per_class_topk_matches_numpy(case):
    d, y = torch.from_numpy(case["d_u"]), torch.from_numpy(case["y_u"])
    unseen = torch.from_numpy(UNSEEN)
    for k in (1, 2, 3):
        assert float(per_class_topk(d, y, unseen, k=k)) == pytest.approx(
            np_topk(case["d_u"], case["y_u"], UNSEEN, k), abs=1e-12
        )
    assert float(per_class_topk(d, y, unseen, k=1)) == pytest.approx(
        float(per_class_top1(predict(d, unseen), y, unseen)), abs=1e-12
    )
    assert float(per_class_topk(d, y, unseen, k=len(UNSEEN))) == 1.0
    # the never-predicted unseen class 9 is not in anyone's top-1 but counts (with 0) in the mean
    assert np_topk(case["d_u"], case["y_u"], UNSEEN, 1) < 1.0


def test_choose_gamma_is_the_best_grid_point_with_ties_to_the_smallest_abs_gamma(case):
    grid = np.linspace(-2.5, 2.5, 51)
    h = np_sweep(case, grid)[:, 2]
    best = grid[h >= h.max() - 1e-12]
    expected = sorted(best, key=lambda g: (abs(g), g))[0]
    assert choose_gamma(as_torch(case), gammas=grid) == pytest.approx(expected, abs=1e-15)

    # every γ of one constant interval gives the same H: the smallest |γ| wins
    crit = np_critical(case)
    above = [crit[-1] + 3.0, crit[-1] + 1.0, crit[-1] + 2.0]  # all unseen, H = 0
    below = [crit[0] - 2.0, crit[0] - 1.0]  # all seen, H = 0 too
    got = choose_gamma(as_torch(case), gammas=above + below)
    assert got == sorted(above + below, key=lambda g: (abs(g), g))[0]


def test_exact_choice_reaches_the_best_h_of_any_gamma(case):
    gamma = choose_gamma(as_torch(case))  # gammas=None: one candidate per interval, and 0
    h_chosen = np_sweep(case, [gamma])[0, 2]
    crit = np_critical(case)
    middles = np.concatenate([[crit[0] - 1], (crit[1:] + crit[:-1]) / 2, [crit[-1] + 1]])
    dense = np.linspace(crit[0] - 1, crit[-1] + 1, 401)
    assert h_chosen == pytest.approx(np_sweep(case, middles)[:, 2].max(), abs=1e-12)
    assert h_chosen >= np_sweep(case, dense)[:, 2].max() - 1e-12
    assert h_chosen >= np_sweep(case, [0.0])[0, 2] - 1e-12  # never worse than no calibration


def test_exact_choice_is_insensitive_to_float_noise_in_the_distances(case):
    gamma = choose_gamma(as_torch(case))
    rng = np.random.default_rng(1)
    for key in ("d_s", "d_u"):  # ~1e-7 relative, the size of float32 reduction-order noise
        case[key] = case[key] * (1.0 + 1e-7 * rng.standard_normal(case[key].shape))
    assert choose_gamma(as_torch(case)) == gamma
    assert len(repr(gamma)) <= 8  # a short number, not a midpoint with 17 digits


def test_choose_gamma_prefers_zero_when_it_is_among_the_best():
    # every image is right at γ = 0 and stays right for small |γ|
    d_s = torch.tensor([[0.0, 1.0], [0.1, 1.0]])
    d_u = torch.tensor([[1.0, 0.0], [1.0, 0.2]])
    scores = GZSLScores(
        d_s, torch.tensor([0, 0]), d_u, torch.tensor([1, 1]), torch.tensor([0]), torch.tensor([1])
    )
    assert choose_gamma(scores) == 0.0
    assert choose_gamma(scores, gammas=[-0.5, 0.5, 0.0, 0.1]) == 0.0


def test_ausuc_matches_a_numpy_trapezoid_and_bounds(case):
    crit = np_critical(case)
    middles = np.concatenate([[crit[0] - 1], (crit[1:] + crit[:-1]) / 2, [crit[-1] + 1]])
    curve = np_sweep(case, middles)
    order = np.lexsort((-curve[:, 0], curve[:, 1]))  # by u, then s decreasing
    s, u = curve[order, 0], curve[order, 1]
    expected = float(np.sum((u[1:] - u[:-1]) * (s[1:] + s[:-1]) / 2))
    got = float(ausuc(as_torch(case)))
    assert got == pytest.approx(expected, abs=1e-12)
    # a dense grid from "all seen" to "all unseen" approaches the exact area
    dense = np_sweep(case, np.linspace(crit[0] - 1, crit[-1] + 1, 4001))
    o = np.lexsort((-dense[:, 0], dense[:, 1]))
    approx = float(np.sum(np.diff(dense[o, 1]) * (dense[o, 0][1:] + dense[o, 0][:-1]) / 2))
    assert got == pytest.approx(approx, abs=0.02)
    # the curve runs from u = 0 to s = 0, inside [0, u_max] × [0, s_max]
    _, s_curve, u_curve = seen_unseen_curve(as_torch(case))
    assert float(u_curve[0]) == 0.0 and float(s_curve[-1]) == 0.0
    assert 0.0 < got <= float(u_curve.max()) * float(s_curve.max()) + 1e-12


def test_ausuc_of_a_perfect_classifier_is_one():
    rng = np.random.default_rng(0)
    case = random_case(0)
    for key, labels in (("d_s", case["y_s"]), ("d_u", case["y_u"])):
        d = 1.0 + rng.random((len(labels), NUM_CLASSES))
        d[np.arange(len(labels)), labels] = rng.random(len(labels)) * 0.5  # own class nearest
        case[key] = d
    assert float(ausuc(as_torch(case))) == pytest.approx(1.0, abs=1e-12)
    gamma = choose_gamma(as_torch(case))
    assert np_sweep(case, [gamma])[0, 2] == pytest.approx(1.0)


def test_target_classes_without_images_raise():
    case = random_case(0)
    keep = case["y_u"] != 4
    case["d_u"], case["y_u"] = case["d_u"][keep], case["y_u"][keep]
    with pytest.raises(ValueError, match=r"\[4\]"):
        gzsl_sweep(as_torch(case), [0.0])


@pytest.mark.filterwarnings("ignore:The ``compute`` method of metric GZSLMetrics")
def test_gzsl_metrics_merges_states_and_tells_seen_from_unseen_images_by_label(case):
    d_s, y_s, d_u, y_u, seen, unseen = parts(case)
    a, b = GZSLMetrics(seen, unseen), GZSLMetrics(seen, unseen)
    # images mixed and split between two "processes", in any order
    a.update(torch.cat([d_u[:30], d_s[:50]]), torch.cat([y_u[:30], y_s[:50]]))
    b.update(torch.cat([d_s[50:], d_u[30:]]), torch.cat([y_s[50:], y_u[30:]]))
    a.merge_state(b)  # what a DDP gather does with "cat" states
    scores = a.scores()
    assert sorted(scores.seen_labels.tolist()) == sorted(y_s.tolist())
    assert sorted(scores.unseen_labels.tolist()) == sorted(y_u.tolist())
    assert scores.unseen_distances.shape == d_u.shape
    assert gzsl_results(scores, 0.3) == gzsl_results(as_torch(case), 0.3)
    a.reset()
    with pytest.raises(ValueError, match="no evaluation images"):
        a.scores()
    stray = GZSLMetrics(torch.tensor([0]), torch.tensor([1]))
    stray.update(torch.zeros(2, 3), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"classes \[2\] belong to neither"):
        stray.scores()


def test_gzsl_results_match_the_functional_metrics(case):
    d_s, y_s, d_u, y_u, seen, unseen = parts(case)
    got = gzsl_results(as_torch(case), gamma=0.3)
    candidates = torch.cat([seen, unseen])
    s = float(per_class_top1(predict(d_s, candidates), y_s, seen))
    u = float(per_class_top1(predict(d_u, candidates), y_u, unseen))
    s_cal, u_cal, h_cal = gzsl_sweep(as_torch(case), [0.3])
    assert got == pytest.approx({
        "zsl_acc": float(per_class_top1(predict(d_u, unseen), y_u, unseen)),
        "zsl_top5": np_topk(case["d_u"], case["y_u"], UNSEEN, 5),
        "gzsl_s": s, "gzsl_u": u, "gzsl_H": np_h(s, u),
        "ausuc": float(ausuc(as_torch(case))),
        "gamma": 0.3, "gzsl_s_cal": float(s_cal[0]), "gzsl_u_cal": float(u_cal[0]),
        "gzsl_H_cal": float(h_cal[0]),
        "ties": 0.0, "zsl_ties": 0.0,  # continuous random distances: no ties
    }, abs=1e-12)  # fmt: skip
    assert "gamma" not in gzsl_results(as_torch(case))


# ------------------------------------------------------------------ the per-class reports
def test_per_class_rows_and_confusion_agree_with_the_metrics(case, tmp_path):
    d_s, y_s, d_u, y_u, seen, unseen = parts(case)
    scores = as_torch(case)
    names = [f"class{c}" for c in range(NUM_CLASSES)]
    rows = per_class_rows(scores, names, gamma=0.3)
    assert [r["class_index"] for r in rows] == list(range(NUM_CLASSES))
    by_split = {p: [r for r in rows if r["split"] == p] for p in ("seen", "unseen")}
    candidates = torch.cat([seen, unseen])
    s_cal, u_cal, _ = gzsl_sweep(scores, [0.3])
    zsl = per_class_top1(predict(d_u, unseen), y_u, unseen)
    checks = [
        (by_split["unseen"], "zsl_acc", zsl),
        (by_split["seen"], "gzsl_acc", per_class_top1(predict(d_s, candidates), y_s, seen)),
        (by_split["unseen"], "gzsl_acc", per_class_top1(predict(d_u, candidates), y_u, unseen)),
        (by_split["seen"], "gzsl_acc_cal", s_cal[0]),
        (by_split["unseen"], "gzsl_acc_cal", u_cal[0]),
    ]
    for part, column, expected in checks:
        assert np.mean([r[column] for r in part]) == pytest.approx(float(expected), abs=1e-12)
    assert sum(r["n_images"] for r in rows) == len(y_s) + len(y_u)
    assert all(r["zsl_acc"] == "" for r in by_split["seen"])

    matrix = zsl_confusion(scores)
    assert matrix.shape == (len(UNSEEN), len(UNSEEN))
    np.testing.assert_allclose(matrix.sum(1).numpy(), 1.0)
    assert float(matrix.diagonal().mean()) == pytest.approx(float(zsl), abs=1e-12)
    assert float(matrix[:, list(UNSEEN).index(9)].sum()) == 0.0  # never predicted

    csv_path, png_path = write_eval_reports(Evaluation("test", scores, 0.3), names, tmp_path)
    assert csv_path.read_text().splitlines()[0] == (
        "class_index,class_name,split,n_images,zsl_acc,gzsl_acc,gzsl_acc_cal"
    )
    assert len(csv_path.read_text().splitlines()) == NUM_CLASSES + 1
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------- the model: γ comes from validation only
def test_test_gamma_comes_from_the_validation_split_never_from_test_images(caplog):
    dm = SyntheticDataModule(
        split_mode="test", generator={"feature_dim": 64, "images_per_class": 40}
    )
    dm.setup()
    model = ESZSLClassifier(dm.feature_dim, dm.signature_dim, gammas=[1.0], lambdas=[1.0])
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    with caplog.at_level(logging.WARNING):
        trainer.test(model, datamodule=dm, verbose=False)
        assert "test/gamma" not in trainer.callback_metrics  # the module never chooses it
        trainer.callbacks.append(TestGammaFromValidation())  # what the entry points add
        first = dict(trainer.test(model, datamodule=dm, verbose=False)[0])
    assert "Could not re-express" not in caplog.text
    gamma = first["test/gamma"]

    # The same γ by hand: the validation split's evaluation images, in the run's feature space
    # (standardised on trainval, as the model saw its training images).
    split = dm.make_split("val")
    _, held_out, val = dm._split_indices(dm.arrays, "val")
    features = torch.as_tensor(dm.arrays.features)
    trainval = features[dm.arrays.splits["trainval"]]
    z = (features - trainval.mean(0)) / trainval.std(0)
    with torch.no_grad():
        d_seen, d_unseen = model.class_distances(z[held_out]), model.class_distances(z[val])
    expected = choose_gamma(
        GZSLScores(
            d_seen,
            split.eval["seen"].labels,
            d_unseen,
            split.eval["unseen"].labels,
            split.seen_classes,
            split.unseen_classes,
        )
    )
    assert gamma == pytest.approx(expected, rel=1e-6)

    # Replacing the test images changes the test metrics, never γ.
    generator = torch.Generator().manual_seed(0)
    for part in ("unseen", "seen"):
        images = dm.eval_images[part]
        images.features = torch.randn(images.features.shape, generator=generator)
    second = dict(trainer.test(model, datamodule=dm, verbose=False)[0])
    assert second["test/gamma"] == gamma
    assert second["test/zsl_acc"] != pytest.approx(first["test/zsl_acc"])
