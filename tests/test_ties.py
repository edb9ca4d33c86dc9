"""Ties between equally near classes score their expectation under uniform random tie-breaking.

Hand-made distances with 2-, 3- and 6-way ties give exact fractions for every metric; random
integer distances (exact ties, many of them) are checked against brute-force references
written here image by image; relabelling the classes and reordering the images change nothing.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction as F

import numpy as np
import pytest
import torch
from cli_utils import run_cli

from src.metrics import (
    GZSLScores,
    ausuc,
    choose_gamma,
    critical_gammas,
    gzsl_results,
    gzsl_sweep,
    per_class_nearest,
    per_class_rows,
    per_class_topk,
    seen_unseen_curve,
    zsl_confusion,
)
from src.metrics.ties import TIE_RTOL, nearest_credit, nearest_ties, stacked

# ------------------------------------------------------------------------------ the hand case
# columns: seen classes 0, 1, 2, then unseen classes 3 … 8; integer distances (exact ties)
HAND_SEEN = {  # label: distances; t = min unseen − min seen
    "A": (0, [2, 2, 9, 5, 5, 5, 5, 5, 5]),  # 2-way seen tie holding class 0; t = 3
    "B": (1, [4, 1, 9, 5, 5, 5, 5, 5, 5]),  # right; t = 4
    "C": (2, [3, 3, 3, 3, 3, 3, 9, 9, 9]),  # 3 seen tied with 3 unseen: t = 0
}
HAND_UNSEEN = {
    "D": (3, [8, 8, 8, 1, 1, 5, 5, 5, 5]),  # 2-way unseen tie holding class 3; t = −7
    "E": (4, [2, 6, 6, 7, 2, 9, 9, 9, 9]),  # seen class 0 tied with its own class 4: t = 0
    "F": (5, [9, 9, 9, 4, 4, 4, 9, 9, 9]),  # 3-way unseen tie holding class 5; t = −5
    "G": (6, [5, 9, 9, 1, 2, 3, 4, 4, 4]),  # wrong; its class shares places 4–6 with 7 and 8
    "H": (7, [1, 9, 9, 9, 9, 9, 9, 2, 9]),  # nearest seen wrong, own class 1 further: t = 1
    "I": (8, [9, 9, 9, 6, 6, 6, 6, 6, 6]),  # all 6 unseen tied (an all-zero image); t = −3
}
SEEN, UNSEEN = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5, 6, 7, 8])


def hand_scores() -> GZSLScores:
    def part(images):
        labels = torch.tensor([label for label, _ in images.values()])
        return torch.tensor([d for _, d in images.values()], dtype=torch.float32), labels

    d_s, y_s = part(HAND_SEEN)
    d_u, y_u = part(HAND_UNSEEN)
    return GZSLScores(d_s, y_s, d_u, y_u, SEEN, UNSEEN)


def harmonic(s, u):
    return 0 if s + u == 0 else 2 * s * u / (s + u)


# per class, written out from the comments above
ZSL = {3: F(1, 2), 4: F(1), 5: F(1, 3), 6: F(0), 7: F(1), 8: F(1, 6)}
GZSL = {0: F(1, 2), 1: F(1), 2: F(1, 6), 3: F(1, 2), 4: F(1, 2), 5: F(1, 3), 6: F(0), 7: F(0),
        8: F(1, 6)}  # fmt: skip
CAL_2 = {0: F(1, 2), 1: F(1), 2: F(0), 3: F(1, 2), 4: F(1), 5: F(1, 3), 6: F(0), 7: F(1),
         8: F(1, 6)}  # fmt: skip  # γ = 2: between the critical values 1 and 3


def test_hand_case_metrics_are_the_exact_fractions():
    got = gzsl_results(hand_scores(), gamma=2.0)
    s, u = F(5, 9), F(1, 4)  # (½ + 1 + ⅙) / 3 and (½ + ½ + ⅓ + 0 + 0 + ⅙) / 6
    assert np.mean([float(v) for v in ZSL.values()]) == pytest.approx(0.5)
    expected = {
        "zsl_acc": 0.5,
        "gzsl_s": s, "gzsl_u": u, "gzsl_H": harmonic(s, u),
        "zsl_top5": F(11, 12),  # (1 + 1 + 1 + ⅔ + 1 + ⅚) / 6: G has a = 3, b = 3; I a = 0, b = 6
        "gamma": 2.0, "gzsl_s_cal": F(1, 2), "gzsl_u_cal": F(1, 2), "gzsl_H_cal": F(1, 2),
        "ties": 6,  # A, C, D, E, F, I
        "zsl_ties": 3,  # D, F, I
    }  # fmt: skip
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), abs=1e-12), key
    # top-2: D 1, E 1, F ⅔, G 0 (a = 3 ≥ 2), H 1, I ⅓
    d_u, y_u = hand_scores().unseen_distances, hand_scores().unseen_labels
    assert float(per_class_topk(d_u, y_u, UNSEEN, k=2)) == pytest.approx(2 / 3, abs=1e-12)


@pytest.mark.parametrize(
    ("gamma", "s", "u"),
    [
        (0.0, F(5, 9), F(1, 4)),  # C and E: the whole seen–unseen tie, 1/6 and 1/2
        (1.0, F(1, 2), F(5, 12)),  # γ = t of H: (0 + 1) / (1 + 1)
        (2.0, F(1, 2), F(1, 2)),
        (3.0, F(3, 8), F(1, 2)),  # γ = t of A: (1 + 0) / (2 + 6)
        (-3.0, F(11, 18), F(17, 108)),  # γ = t of I: 1/(3 + 6); C predicted seen: ⅓
        (-8.0, F(11, 18), F(0)),  # every image predicted seen
        (5.0, F(0), F(1, 2)),  # every image predicted unseen: u is the ZSL accuracy
    ],
)
def test_hand_case_calibrated_at_and_between_critical_values(gamma, s, u):
    got_s, got_u, got_h = gzsl_sweep(hand_scores(), [gamma])
    assert float(got_s[0]) == pytest.approx(float(s), abs=1e-12)
    assert float(got_u[0]) == pytest.approx(float(u), abs=1e-12)
    assert float(got_h[0]) == pytest.approx(float(harmonic(s, u)), abs=1e-12)


def test_hand_case_per_class_rows_and_confusion():
    names = [f"c{i}" for i in range(9)]
    rows = {r["class_index"]: r for r in per_class_rows(hand_scores(), names, gamma=2.0)}
    for c in range(9):
        assert rows[c]["gzsl_acc"] == pytest.approx(float(GZSL[c]), abs=1e-12), c
        assert rows[c]["gzsl_acc_cal"] == pytest.approx(float(CAL_2[c]), abs=1e-12), c
        if c in ZSL:
            assert rows[c]["zsl_acc"] == pytest.approx(float(ZSL[c]), abs=1e-12), c
    expected = np.array([  # rows: images D … I (classes 3 … 8); columns: classes 3 … 8
        [1 / 2, 1 / 2, 0, 0, 0, 0],
        [0, 1, 0, 0, 0, 0],
        [1 / 3, 1 / 3, 1 / 3, 0, 0, 0],
        [1, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1, 0],
        [1 / 6] * 6,
    ])  # fmt: skip
    np.testing.assert_allclose(zsl_confusion(hand_scores()).numpy(), expected, atol=1e-15)


def test_hand_case_curve_and_critical_values():
    scores = hand_scores()
    assert critical_gammas(scores).tolist() == [-7.0, -5.0, -4.0, -3.0, 0.0, 1.0, 3.0, 4.0]
    g, s, u = seen_unseen_curve(scores)
    assert set(critical_gammas(scores).tolist()) <= set(g.tolist())  # the mixtures are on it
    assert (np.diff(s.numpy()) <= 1e-15).all() and (np.diff(u.numpy()) >= -1e-15).all()
    assert float(u[-1]) == pytest.approx(0.5) and float(s[-1]) == 0.0  # ends at the ZSL acc.
    assert 0.0 < float(ausuc(scores)) < 0.5


# ------------------------------------------------------------------ float rounding and TIE_RTOL
def test_rounding_differences_tie_and_real_differences_do_not():
    assert 2.4e-7 < TIE_RTOL < 5e-7  # README, "How ties count": measured on APY
    rounded = torch.tensor([[1 - 1e-7, 1.0, 1 + 1e-7]], dtype=torch.float32)
    assert nearest_ties(rounded).tolist() == [[True, True, True]]
    assert nearest_credit(rounded, torch.tensor([2]), torch.arange(3)).tolist() == [1 / 3]
    apart = torch.tensor([[1.0, 1.001, 1.0 + 1e-7]], dtype=torch.float32)
    assert nearest_ties(apart).tolist() == [[True, False, True]]
    assert nearest_credit(apart, torch.tensor([1]), torch.arange(3)).tolist() == [0.0]
    # the tolerance is relative to the image's largest distance: the same rounding at 1e3
    big = rounded * 1000
    assert nearest_ties(big).tolist() == [[True, True, True]]
    # a seen and an unseen minimum within rounding: t is exactly 0, the whole tie counts
    st = stacked(rounded, torch.tensor([0]), torch.tensor([0]), torch.tensor([1, 2]))
    assert st.t.tolist() == [0.0]
    assert st.credit(0.0).tolist() == [1 / 3]


# ------------------------------------------------- ties by construction under TF32-style products
def tf32(t: torch.Tensor) -> torch.Tensor:
    """float32 rounded to TF32's 10-bit mantissa (round to nearest): what a GPU's tensor cores
    read of a float32 matrix product's inputs when TF32 is allowed."""
    bits = t.contiguous().view(torch.int32)
    return ((bits + 0x1000) & -0x2000).view(torch.float32)


class TF32Products(torch.overrides.TorchFunctionMode):
    """Every float32 matrix product computed from TF32-rounded inputs (relative error up to 5e-4
    per input); float64 products untouched, as on a GPU."""

    PRODUCTS = frozenset({"matmul", "__matmul__", "mm", "addmm", "bmm", "baddbmm"})

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", None)
        if name in self.PRODUCTS:
            first = 1 if name.startswith(("addmm", "baddbmm")) else 0  # not the added term
            args = tuple(
                tf32(a)
                if i >= first and isinstance(a, torch.Tensor) and a.dtype == torch.float32
                else a
                for i, a in enumerate(args)
            )
        return func(*args, **(kwargs or {}))


def tied_by_construction() -> tuple[torch.nn.Module, torch.Tensor]:
    """The untrained metric (W = L = I) on L2-normalised signatures: an all-zero image is at
    ‖a_c‖² = 1 from classes 0–3 (a true 4-way tie) and at 1.001 from class 4 (a genuine gap of
    1e-3 relative); a second image is nearest to class 4 alone."""
    from src.models import MetricZSLSystem

    gen = torch.Generator().manual_seed(3)
    k = 12
    raw = torch.randn(5, k, generator=gen)
    # normalised as ZSLDataModule does: float32 for training, float64 for evaluation
    exact = torch.nn.functional.normalize(raw.double(), dim=1)
    exact[4] *= 1.001**0.5
    model = MetricZSLSystem(k, k, init="identity")
    with torch.no_grad():
        model.metric.W.copy_(torch.eye(k))
    model.register_buffer("signatures", exact.float(), persistent=False)
    model.register_buffer("exact_signatures", exact, persistent=False)
    images = torch.stack([torch.zeros(k), 2 * exact[4].float()])
    return model, images


def test_tf32_products_split_a_true_tie_in_float32():
    """The emulation is live: the float32 path itself rounds the tie apart (the reason every
    evaluation scores in float64)."""
    model, images = tied_by_construction()
    with TF32Products():
        fast = model.class_distances(images)
    spread = fast[0, :4].max() - fast[0, :4].min()
    assert spread > 10 * TIE_RTOL  # far outside the float32 tolerance
    assert nearest_ties(fast[:1]).sum() < 4


@pytest.mark.parametrize("precision", ["tf32", "bf16-autocast", "float32"])
def test_a_true_tie_stays_a_tie_and_a_gap_of_1e_3_stays_a_gap(precision):
    model, images = tied_by_construction()
    context = {
        "tf32": TF32Products(),
        "bf16-autocast": torch.autocast("cpu", dtype=torch.bfloat16),
        "float32": torch.no_grad(),
    }[precision]
    with context:
        exact = model.score(images)
    assert exact.dtype == torch.float64
    assert nearest_ties(exact).tolist() == [[True] * 4 + [False], [False] * 4 + [True]]
    credit = nearest_credit(exact, torch.tensor([0, 4]), torch.arange(5))
    assert credit.tolist() == [0.25, 1.0]
    # the gap is measured, not absorbed: class 4 is 1e-3 (relative) behind the tie
    assert float(exact[0, 4] - exact[0, 0]) == pytest.approx(1e-3, rel=1e-6)


@pytest.mark.parametrize("kind", ["metric", "compatibility", "nearest_signature"])
def test_identical_signatures_tie_for_every_image_under_tf32_products(kind):
    """Two classes with the same signature are equally near every image, trained weights or not;
    a third class is not."""
    from src.models import CompatibilityZSLSystem, MetricZSLSystem, NearestSignatureClassifier

    gen = torch.Generator().manual_seed(5)
    d = k = 16
    exact = torch.randn(4, k, generator=gen, dtype=torch.float64)
    exact[1] = exact[0]
    build = {
        "metric": lambda: MetricZSLSystem(d, k, init="identity", rank=8),
        "compatibility": lambda: CompatibilityZSLSystem(d, k),
        "nearest_signature": lambda: NearestSignatureClassifier(d, k),
    }
    model = build[kind]()
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen))
    model.register_buffer("signatures", exact.float(), persistent=False)
    model.register_buffer("exact_signatures", exact, persistent=False)
    images = torch.randn(50, d, generator=gen)
    with TF32Products():
        distances = model.score(images)
    ties = nearest_ties(distances)
    assert (ties[:, 0] == ties[:, 1]).all()  # both or neither, whatever the image
    assert (ties.sum(1) <= 2).all()  # no other class joins by rounding
    tol = TIE_RTOL * distances.abs().amax(1)
    assert ((distances[:, 0] - distances[:, 1]).abs() <= tol * 1e-2).all()


def test_the_float64_tolerance_keeps_rounding_in_and_small_genuine_gaps_out():
    from src.metrics.ties import TIE_RTOL_F64, relative_tolerance

    assert relative_tolerance(torch.float64) == TIE_RTOL_F64 < 1e-8
    assert relative_tolerance(torch.float32) == TIE_RTOL
    rounding = torch.tensor([[1.0, 1.0 + 4e-16, 1.0 - 2e-16, 1.0 + 5.4e-7]], dtype=torch.float64)
    assert nearest_ties(rounding).tolist() == [[True, True, True, False]]
    # the same values as float32 keep the float32 rule: 5.4e-7 apart is still a gap there
    assert nearest_ties(rounding.float()).tolist() == [[True, True, True, False]]


# ---------------------------------------------------------- random cases with many exact ties
N_CLASSES = 11
R_SEEN, R_UNSEEN = np.array([0, 2, 3, 6, 8]), np.array([1, 4, 5, 7, 9, 10])


def random_tied_case(seed: int) -> dict:
    """Integer distances in [0, 8) (many exact ties within and across seen and unseen), a few
    all-equal rows (all-zero images) and rows with rounding-size noise on a tie."""
    rng = np.random.default_rng(seed)

    def part(classes, n):
        labels = np.concatenate([classes, rng.choice(classes, n - len(classes))])
        d = rng.integers(0, 8, (n, N_CLASSES)).astype(np.float64)
        d[np.arange(n), labels] -= rng.integers(0, 3, n)  # some signal
        d[rng.random(n) < 0.15] = 4.0  # all-zero images: every class equally near
        return d, labels

    d_s, y_s = part(R_SEEN, 60)
    d_u, y_u = part(R_UNSEEN, 50)
    return {"d_s": d_s, "y_s": y_s, "d_u": d_u, "y_u": y_u}


def to_scores(case: dict, seen=R_SEEN, unseen=R_UNSEEN) -> GZSLScores:
    t = {k: torch.from_numpy(np.asarray(v)) for k, v in case.items()}
    return GZSLScores(t["d_s"], t["y_s"], t["d_u"], t["y_u"], torch.from_numpy(seen),
                      torch.from_numpy(unseen))  # fmt: skip


def brute_credit(d: np.ndarray, labels: np.ndarray, gamma: float) -> np.ndarray:
    """Image by image: γ added to the seen classes, the set of classes at the minimum (exact
    ties: integer distances), 1/|set| when it holds the true class."""
    candidates = np.concatenate([R_SEEN, R_UNSEEN])
    out = []
    for row, label in zip(d, labels, strict=True):
        penalised = row[candidates] + gamma * np.isin(candidates, R_SEEN)
        tied = candidates[penalised == penalised.min()]
        out.append(float(label in tied) / len(tied))
    return np.array(out)


def class_mean(credit, labels, classes) -> float:
    return float(np.mean([credit[labels == c].mean() for c in classes]))


def brute_sweep(case: dict, gamma: float) -> tuple[float, float, float]:
    s = class_mean(brute_credit(case["d_s"], case["y_s"], gamma), case["y_s"], R_SEEN)
    u = class_mean(brute_credit(case["d_u"], case["y_u"], gamma), case["y_u"], R_UNSEEN)
    return s, u, harmonic(s, u)


def brute_topk(d: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Expected top-k over every order in which the tied unseen candidates could be broken."""
    candidates = R_UNSEEN
    credit = []
    for row, label in zip(d, labels, strict=True):
        hits = []
        for order in itertools.permutations(range(len(candidates))):
            rank = np.lexsort((np.array(order), row[candidates]))  # distance, then random key
            hits.append(label in candidates[rank[:k]])
        credit.append(np.mean(hits))
    return class_mean(np.array(credit), labels, candidates)


@pytest.fixture(params=[0, 1, 2])
def tied_case(request) -> dict:
    return random_tied_case(request.param)


def test_the_sweep_equals_a_brute_force_at_and_between_critical_values(tied_case):
    scores = to_scores(tied_case)
    critical = critical_gammas(scores).numpy()
    assert np.all(critical == np.round(critical))  # integer distances: integer t
    gammas = np.concatenate([critical, (critical[1:] + critical[:-1]) / 2,
                             [critical[0] - 1, critical[-1] + 1, 0.0, 0.25]])  # fmt: skip
    s, u, h = gzsl_sweep(scores, torch.from_numpy(gammas))
    expected = np.array([brute_sweep(tied_case, g) for g in gammas])
    np.testing.assert_allclose(np.stack([s, u, h], 1), expected, atol=1e-12)
    got = gzsl_results(scores, gamma=1.0)
    assert got["gzsl_s"] == pytest.approx(expected[gammas == 0.0][0, 0], abs=1e-12)
    assert got["gzsl_u"] == pytest.approx(expected[gammas == 0.0][0, 1], abs=1e-12)
    assert got["gzsl_H_cal"] == pytest.approx(brute_sweep(tied_case, 1.0)[2], abs=1e-12)
    assert got["ties"] > 0 and got["zsl_ties"] > 0
    # AUSUC: the trapezoids through every reachable (u, s), at and between critical values
    curve = np.array([brute_sweep(tied_case, g) for g in np.sort(gammas[:-2])])
    order = np.lexsort((-curve[:, 0], curve[:, 1]))
    s_c, u_c = curve[order, 0], curve[order, 1]
    area = float(np.sum(np.diff(u_c) * (s_c[1:] + s_c[:-1]) / 2))
    assert float(ausuc(scores)) == pytest.approx(area, abs=1e-12)


def test_zsl_and_topk_equal_the_enumeration_of_every_tie_break(tied_case):
    d_u, y_u = tied_case["d_u"][:25], tied_case["y_u"][:25]  # every unseen class among them
    d, y, unseen = torch.from_numpy(d_u), torch.from_numpy(y_u), torch.from_numpy(R_UNSEEN)
    for k in (2, 5):
        expected = brute_topk(d_u, y_u, k)
        assert float(per_class_topk(d, y, unseen, k=k)) == pytest.approx(expected, abs=1e-12)
    expected = brute_topk(d_u, y_u, 1)
    assert float(per_class_topk(d, y, unseen, k=1)) == pytest.approx(expected, abs=1e-12)
    assert float(per_class_nearest(d, y, unseen)) == pytest.approx(expected, abs=1e-12)


def test_choose_gamma_reaches_the_best_h_of_any_gamma(tied_case):
    scores = to_scores(tied_case)
    gamma = choose_gamma(scores)
    critical = critical_gammas(scores).numpy()
    reachable = np.concatenate([critical, (critical[1:] + critical[:-1]) / 2,
                                [critical[0] - 1, critical[-1] + 1]])  # fmt: skip
    best = max(brute_sweep(tied_case, g)[2] for g in reachable)
    assert brute_sweep(tied_case, gamma)[2] == pytest.approx(best, abs=1e-12)


def test_choose_gamma_does_not_return_zero_at_a_worse_mixture():
    # seen image: right when predicted seen, tied at t = 0; unseen image: right for γ > −1.
    # H: 1 on (−1, 0), ⅔ at γ = 0 (the seen image scores ½ there): the old "(−1, 0] holds 0"
    scores = GZSLScores(torch.tensor([[1.0, 1.0]]), torch.tensor([0]),
                        torch.tensor([[1.0, 0.0]]), torch.tensor([1]),
                        torch.tensor([0]), torch.tensor([1]))  # fmt: skip
    assert gzsl_sweep(scores, [0.0])[2].tolist() == pytest.approx([2 / 3])
    gamma = choose_gamma(scores)
    assert -1.0 < gamma < 0.0 and float(gzsl_sweep(scores, [gamma])[2][0]) == 1.0
    # a critical value strictly better than both sides is chosen as it is
    scores = GZSLScores(torch.tensor([[1.0, 2.0]]), torch.tensor([0]),
                        torch.tensor([[1.0, 2.0]]), torch.tensor([1]),
                        torch.tensor([0]), torch.tensor([1]))  # fmt: skip
    assert choose_gamma(scores) == 1.0  # s = u = ½ there, H = 0 on either side
    tied_at_zero = GZSLScores(torch.tensor([[1.0, 1.0]]), torch.tensor([0]),
                              torch.tensor([[1.0, 1.0]]), torch.tensor([1]),
                              torch.tensor([0]), torch.tensor([1]))  # fmt: skip
    assert choose_gamma(tied_at_zero) == 0.0


# ------------------------------------------------------------ invariance: classes and images
def relabelled(case: dict, perm: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray]:
    """Class c becomes class perm[c]: labels mapped, distance columns moved with them."""
    out = {}
    for part in ("s", "u"):
        d = np.empty_like(case[f"d_{part}"])
        d[:, perm] = case[f"d_{part}"]
        out[f"d_{part}"], out[f"y_{part}"] = d, perm[case[f"y_{part}"]]
    return out, np.sort(perm[R_SEEN]), np.sort(perm[R_UNSEEN])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_relabelling_the_classes_changes_no_metric(seed):
    case = random_tied_case(seed)
    case = {k: v.astype(np.float32) if k.startswith("d") else v for k, v in case.items()}
    noise = np.random.default_rng(seed).integers(-1, 2, (5, N_CLASSES)) * np.float32(1e-7)
    case["d_u"][:5] = 1 + noise  # all-zero images under rounding: 1 ± 1e-7, every class tied
    scores = to_scores(case)
    perm = np.random.default_rng(seed).permutation(N_CLASSES)
    other_case, seen, unseen = relabelled(case, perm)
    other = to_scores(other_case, seen, unseen)
    gamma = choose_gamma(scores)
    assert choose_gamma(other) == gamma
    assert gzsl_results(other, gamma) == pytest.approx(gzsl_results(scores, gamma), abs=1e-12)
    names = [f"class{c}" for c in range(N_CLASSES)]
    other_names = [""] * N_CLASSES
    for c in range(N_CLASSES):
        other_names[perm[c]] = names[c]
    by_name = {r["class_name"]: r for r in per_class_rows(scores, names, gamma)}
    for row in per_class_rows(other, other_names, gamma):
        mine = by_name[row["class_name"]]
        for key in ("split", "n_images", "zsl_acc", "gzsl_acc", "gzsl_acc_cal"):
            assert row[key] == pytest.approx(mine[key], abs=1e-12), key


def test_reordering_the_images_changes_no_bit(tied_case):
    scores = to_scores(tied_case)
    rng = np.random.default_rng(7)
    ps, pu = rng.permutation(len(tied_case["y_s"])), rng.permutation(len(tied_case["y_u"]))
    shuffled = to_scores({"d_s": tied_case["d_s"][ps], "y_s": tied_case["y_s"][ps],
                          "d_u": tied_case["d_u"][pu], "y_u": tied_case["y_u"][pu]})  # fmt: skip
    gammas = torch.linspace(-8, 8, 65, dtype=torch.float64)  # integers and halves: at and between
    for a, b in zip(gzsl_sweep(scores, gammas), gzsl_sweep(shuffled, gammas), strict=True):
        assert torch.equal(a, b)
    assert float(ausuc(scores)) == float(ausuc(shuffled))
    assert choose_gamma(scores) == choose_gamma(shuffled)
    assert gzsl_results(scores, 0.5) == gzsl_results(shuffled, 0.5)
    assert torch.equal(zsl_confusion(scores), zsl_confusion(shuffled))


# ------------------------------------------------------------------ real data: APY, end to end
@pytest.mark.slow
def test_apy_ties_are_counted_and_the_untrained_metric_equals_nearest_signature(
    real_data, tmp_path
):
    """399 test-unseen and 115 test-seen objects have no positive attribute. Scored fairly,
    the untrained metric (W = s·I: the cosine ranking, its ties blurred by float rounding) and
    nearest signature give the same test ZSL, s, u, H, top-5 and AUSUC."""
    root = real_data("APY/att_splits.mat", "APY/attribute_data/apascal_train.txt")
    metrics = {}
    for name, extra in (("ns", "model=nearest_signature"), ("untrained", "trainer.max_epochs=0")):
        args = ["data=apy_annotations", extra, f"data.data_dir={root}",
                f"data.cache_dir={tmp_path / 'cache'}", f"paths.log_dir={tmp_path / name}",
                "print_config=false", "callbacks.rich_progress_bar=null"]  # fmt: skip
        run_cli("src.train", args, timeout=600)
        (run,) = (tmp_path / name / "train" / "runs").iterdir()
        metrics[name] = json.loads((run / "metrics.json").read_text())
    ns, untrained = metrics["ns"], metrics["untrained"]
    assert ns["test/ties"] >= 399 and ns["test/zsl_ties"] >= 399
    assert untrained["test/ties"] == ns["test/ties"]  # rounding ties count as ties
    assert untrained["test/zsl_ties"] == ns["test/zsl_ties"]
    for key in ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H", "zsl_top5", "ausuc"):
        assert untrained[f"test/{key}"] == pytest.approx(ns[f"test/{key}"], abs=1e-6), key
