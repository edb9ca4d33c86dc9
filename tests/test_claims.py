"""Claims a reviewer can accept: p-values corrected for their number (Holm), P(X > Y) over the
paired classes, the best reference chosen on validation, identical predictors said once."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_bootstrap import _credits

from src.metrics import GZSLScores
from src.metrics.bootstrap import (
    bootstrap_p_value,
    class_accuracies,
    class_plan,
    class_weights,
    holm,
    holm_verdict,
    prob_improvement,
)
from src.protocol.kept import save_scores
from src.protocol.report import results
from src.protocol.verdicts import comparisons, mark_aliases, resampled_rows


def test_holm_adjusts_a_hand_computed_family():
    # sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06), 0.5 (×1 = 0.5)
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    # made monotone: 0.04 (×3 = 0.12) may not fall below 0.02 × 4 = 0.08 → both step up in order
    assert holm([0.02, 0.04, 0.9]) == pytest.approx([0.06, 0.08, 0.9])
    assert holm([0.6, 0.7]) == [1.0, 1.0]  # capped at 1
    assert holm([]) == []


def test_a_claim_that_holds_alone_can_vanish_in_its_family():
    p = [0.02, 0.03, 0.04]
    assert all(holm_verdict(v, +0.1, 0.05) == "better" for v in p)  # one test each
    adjusted = holm(p)  # 0.06, 0.06, 0.06
    assert [holm_verdict(v, +0.1, 0.05) for v in adjusted] == ["no detectable difference"] * 3
    assert holm_verdict(0.001, -0.2, 0.05) == "worse"
    assert holm_verdict(math.nan, 0.3, 0.05) == "no detectable difference"


def test_bootstrap_p_values_are_two_sided_and_one_for_identical_rows():
    assert bootstrap_p_value(np.zeros(99)) == 1.0
    diff = np.array([-1.0] * 10 + [1.0] * 89)  # 10 of 99 resamples at or below 0
    assert bootstrap_p_value(diff) == pytest.approx(2 * 11 / 100)
    assert bootstrap_p_value(-diff) == bootstrap_p_value(diff)


def test_prob_improvement_counts_paired_classes_not_the_mean():
    # X wins big on one class and loses narrowly on three: mean higher, P(X > Y) = 1/4
    x, y = np.array([0.9, 0.5, 0.5, 0.5]), np.array([0.1, 0.6, 0.6, 0.6])
    assert x.mean() > y.mean()
    assert prob_improvement(x, y) == 0.25
    assert prob_improvement(np.array([0.5, 0.7]), np.array([0.5, 0.2])) == 0.75  # tie: 1/2
    weights = np.array([[4.0, 0, 0, 0], [0, 2, 1, 1], [1, 1, 1, 1]])  # three class resamples
    np.testing.assert_allclose(prob_improvement(x, y, weights), [1.0, 0.0, 0.25])


def test_class_accuracies_follow_each_metric_and_average_the_seeds():
    a = _credits([1.0, 0.0], [0.5, 1.0, 0.0])
    b = _credits([0.0, 0.0], [0.5, 0.0, 1.0])
    np.testing.assert_allclose(class_accuracies([a, b], "zsl_acc"), [0.5, 0.5, 0.5])
    np.testing.assert_allclose(class_accuracies([a], "gzsl_s"), [1.0, 0.0])
    np.testing.assert_allclose(class_accuracies([a], "gzsl_H_cal"), [1.0, 0.0, 0.5, 1.0, 0.0])
    assert class_accuracies([a], "ausuc") is None
    plan = class_plan(2, 3, 5, seed=0)
    assert class_weights(plan, "gzsl_H").shape == (5, 5)
    assert class_weights(plan, "gzsl_u").shape == (5, 3)


def _row(name, kind, val, zsl, h=0.5):
    return {"name": name, "kind": kind, "val_score": val, "test/zsl_acc": zsl,
            "test/gzsl_H_cal": h, "same_as": ""}  # fmt: skip


def test_the_best_reference_is_chosen_on_validation_not_on_test():
    rows = [
        _row("hardest", "tuned", 0.8, 0.70),
        _row("eszsl", "reference", 0.75, 0.60),  # best on validation
        _row("sae", "reference", 0.70, 0.90),  # best on test: must not be chosen
        _row("untrained", "untrained", math.nan, 0.95),
    ]
    assert results.best_reference(rows)["name"] == "eszsl"
    text = results.verdict(rows, "hardest", [], [])
    assert "the best reference on validation, `eszsl`" in text
    assert "best reference on validation, `sae`" not in text
    assert results.stated_pairs(rows, "hardest", [("hardest", "random")])[0] == ("hardest", "eszsl")


def _scores(seen_d, unseen_d) -> GZSLScores:
    return GZSLScores(
        seen_distances=torch.tensor(seen_d, dtype=torch.float32),
        seen_labels=torch.tensor([0, 1]),
        unseen_distances=torch.tensor(unseen_d, dtype=torch.float32),
        unseen_labels=torch.tensor([2, 3]),
        seen_classes=torch.tensor([0, 1]),
        unseen_classes=torch.tensor([2, 3]),
    )


def test_rows_whose_distances_differ_by_a_positive_affine_map_are_aliases(tmp_path):
    base_s = np.array([[0.1, 0.7, 0.9, 0.8], [0.6, 0.2, 0.8, 0.9]])
    base_u = np.array([[0.9, 0.8, 0.3, 0.5], [0.7, 0.9, 0.6, 0.4]])
    scale = np.array([[2.0], [3.0]])  # a different positive map per image
    variants = {
        "nearest_signature": (base_s, base_u),
        "untrained": (base_s * scale + 1.0, base_u * scale - 0.5),  # the same predictor
        "eszsl": (base_s[:, ::-1].copy(), base_u),  # other rankings
        "flipped": (-base_s, -base_u),  # a negative map reverses every ranking
    }
    files = {}
    for name, (s, u) in variants.items():
        save_scores(tmp_path / f"{name}.npz", _scores(s, u), 0.0, list("abcd"))
        files[name] = [tmp_path / f"{name}.npz"]
    rows = [_row(n, "reference", 0.5, 0.5) for n in variants]
    mark_aliases(rows, files)
    assert [r["same_as"] for r in rows] == ["", "nearest_signature", "", ""]
    assert results.are_aliases(rows, "untrained", "nearest_signature")
    assert not results.are_aliases(rows, "eszsl", "nearest_signature")
    # their comparison is not a verdict, and the table says which row it repeats
    rows[0]["val_score"] = 0.9
    assert results.stated_pairs(rows, "untrained", [("eszsl", "flipped")]) == [
        ("eszsl", "flipped"),
        ("eszsl", "untrained"),
        ("flipped", "untrained"),
    ]
    text = results.verdict(rows, "untrained", [], [])
    assert "the same predictor (= `nearest_signature`): not a verdict" in text
    for row in rows:
        row.update({m: 0.5 for m in results.METRICS}, runs=1)
    assert "`untrained` (= `nearest_signature`)" in results.markdown_table(rows)


def test_only_the_stated_comparisons_form_the_holm_family():
    runs = {
        "a": [_credits([1.0, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0])],
        "b": [_credits([0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0])],
        "c": [_credits([0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0])],
    }
    samples = resampled_rows(runs, 400, seed=3)
    rows = []
    for name in runs:
        row = {"name": name, "same_as": ""}
        row.update({f"test/{m}": float(v.mean()) for m, v in samples["classes"][name].items()})
        rows.append(row)
    plan = class_plan(3, 4, 400, seed=3)
    records = comparisons([("a", "b"), ("a", "c")], rows, samples, 0.95, [("a", "b")], runs, plan)
    family = [r for r in records if r["stated"]]
    assert {(r["row"], r["against"], r["metric"]) for r in family} == {
        ("a", "b", "test/zsl_acc"),
        ("a", "b", "test/gzsl_H_cal"),
    }
    assert [r["p_holm"] for r in family] == pytest.approx(holm([r["p_value"] for r in family]))
    assert all(math.isnan(r["p_holm"]) for r in records if not r["stated"])
    zsl = next(r for r in family if r["metric"] == "test/zsl_acc")
    assert zsl["prob_improvement"] == 0.75  # a > b on 2 of 4 unseen classes, equal on 2
    assert zsl["prob_improvement_ci_low"] <= 0.75 <= zsl["prob_improvement_ci_high"]
    images = [r for r in records if r["resampled"] == "images"]
    assert images and all(math.isnan(r["prob_improvement"]) for r in images)


def test_every_trained_row_faces_the_untrained_metric_in_the_same_family():
    rows = [
        _row("nearest_signature", "reference", 0.6, 0.5),
        _row("eszsl", "reference", 0.7, 0.6),
        _row("untrained", "untrained", 0.65, 0.55),
        _row("hardest", "tuned", 0.8, 0.7),
        _row("random", "tuned", 0.6, 0.55),
        _row("random@hardest", "ablation", math.nan, 0.6),
    ]
    expected = [("eszsl", "untrained"), ("hardest", "untrained"), ("random", "untrained")]
    assert results.against_untrained(rows) == expected  # nearest signature fits nothing
    stated = results.stated_pairs(rows, "hardest", [("hardest", "random")])
    assert stated == [("hardest", "eszsl"), ("hardest", "random"), *expected]
    assert results.against_untrained([r for r in rows if r["name"] != "untrained"]) == []
    flat = {"random": "**no training chosen**: …"}
    text = results.verdict(rows, "hardest", [("hardest", "random")], [], no_training=flat)
    assert "- Does training help at all? Each trained row against `untrained`:" in text
    assert "`random` vs `untrained`: " in text and "**no training chosen**" in text
    assert text.count("no training chosen") == 1


def test_a_search_whose_chosen_curve_stays_at_the_untrained_level_chose_no_training():
    from src.protocol.outcomes import Choice, Chosen, ProtocolResult, ReferenceResult, SearchOutcome
    from src.protocol.report.write import no_training_chosen
    from src.protocol.settings import ProtocolSettings

    def choices(**curves) -> Chosen:
        return Chosen(1, {name: Choice({}, 0, 0.0, 1, 0.0, [], curve)
                          for name, curve in curves.items()})  # fmt: skip

    def result(refs: dict, *searches: Chosen) -> ProtocolResult:
        outcomes = [SearchOutcome(k, {}, chosen) for k, chosen in enumerate(searches)]
        return ProtocolResult([], refs, outcomes, {}, "hardest", [], {}, [])

    settings = ProtocolSettings.from_config({"strategies": ["random", "hardest"]})
    untrained = {"untrained": ReferenceResult([], 0.0, 0.40, {}, {}, [], {})}
    first = choices(
        random=[0.38, 0.40, 0.39],  # never above: flat at the untrained level
        hardest=[0.38, 0.41, 0.45],
        ale=[float("nan"), 0.2],
    )
    flat = no_training_chosen(settings, result(untrained, first))
    assert list(flat) == ["random", "ale"]
    assert flat["random"].startswith("**no training chosen**: its chosen validation curve")
    assert flat["ale"].startswith("below the untrained metric on validation: ")  # it trained
    assert no_training_chosen(settings, result({}, first)) == {}
    # with three searches: said with the number of searches that chose no training
    other = choices(random=[0.5], hardest=[0.38, 0.41, 0.45], ale=[float("nan"), 0.2])
    flat = no_training_chosen(settings, result(untrained, first, other, first))
    assert flat["random"].startswith("**no training chosen** in 2 of 3 searches: ")
    assert flat["ale"].startswith("below the untrained metric on validation in 3 of 3 searches")
