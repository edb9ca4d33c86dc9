"""Bootstrap intervals of the GBU test metrics, and paired comparisons between rows.

In zero-shot learning the unit of generalisation is the *class*: a method is judged on classes
it never saw, and a different draw of test classes would move every number. So the default
bootstrap resamples the test classes with replacement (seen and unseen classes independently,
each per-class accuracy weighted by how often its class was drawn); ``images`` resamples the
images within every class instead (the noise of which images a class happens to hold, the
classes fixed).

One resampling *plan* (the class multiplicities, or the image multiplicities, of every
resample) is drawn once from a seed and applied to every row and every seed's refit: a row's
value in one resample is the mean over its refits (the seeds pooled), and two rows compared on
the same resamples give a *paired* distribution of their difference.

Every metric is computed from per-image credits (1/k for a k-way tie that holds the true class,
:mod:`src.metrics.ties`) and per-class accuracies, exactly as :func:`~src.metrics.gzsl_results`
computes it: with every multiplicity 1 the plan reproduces the point values (tested). AUSUC is
resampled over classes only (its curve needs every γ's per-class accuracies, which image
resampling would recompute for every resample).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from src.core.metric_catalogue import REPORTED

#: the metrics a plan resamples, as named by :func:`~src.metrics.gzsl_results`
METRICS = REPORTED
RESAMPLED = ("classes", "images")


@dataclass
class Credits:
    """One evaluation reduced to what resampling needs.

    Attributes:
        seen_class: local seen-class index (0…S−1) of every seen-class image (N_s).
        unseen_class: local unseen-class index (0…U−1) of every unseen-class image (N_u).
        zsl: credit of every unseen image ranked among the unseen classes (N_u).
        gzsl_seen, gzsl_unseen: credits among seen ∪ unseen, γ = 0 (N_s, N_u).
        cal_seen, cal_unseen: the same with the calibration γ (N_s, N_u), or ``None``.
        curve_seen, curve_unseen: per-class accuracy of the seen (S × G) and unseen (U × G)
            classes at the G points of the calibration sweep, γ increasing (AUSUC).
    """

    seen_class: np.ndarray
    unseen_class: np.ndarray
    zsl: np.ndarray
    gzsl_seen: np.ndarray
    gzsl_unseen: np.ndarray
    cal_seen: np.ndarray | None
    cal_unseen: np.ndarray | None
    curve_seen: np.ndarray
    curve_unseen: np.ndarray

    @property
    def sizes(self) -> tuple[int, int]:
        return int(self.curve_seen.shape[0]), int(self.curve_unseen.shape[0])


@dataclass
class Plan:
    """The resamples shared by every row: per resample, a weight per class (``classes``) or a
    multiplicity per image (``images``), for the seen and the unseen side."""

    resampled: str
    seen: np.ndarray  # R × S (classes) or R × N_s (images)
    unseen: np.ndarray  # R × U or R × N_u

    @property
    def resamples(self) -> int:
        return int(self.seen.shape[0])


def class_plan(seen: int, unseen: int, resamples: int, seed: int) -> Plan:
    """``resamples`` draws of ``seen`` seen and ``unseen`` unseen classes with replacement, as
    multiplicities (each row of a side sums to its class count)."""
    rng = np.random.default_rng(seed)
    return Plan(
        "classes",
        rng.multinomial(seen, np.full(seen, 1.0 / seen), size=resamples).astype(np.float64),
        rng.multinomial(unseen, np.full(unseen, 1.0 / unseen), size=resamples).astype(np.float64),
    )


def image_plan(seen_class: np.ndarray, unseen_class: np.ndarray, resamples: int, seed: int) -> Plan:
    """``resamples`` draws, within every class, of as many of its images as it holds, with
    replacement (the classes themselves fixed), as per-image multiplicities."""
    rng = np.random.default_rng(seed)

    def side(classes: np.ndarray) -> np.ndarray:
        counts = np.zeros((resamples, len(classes)), dtype=np.uint16)
        for c in np.unique(classes):
            members = np.flatnonzero(classes == c)
            draws = rng.multinomial(len(members), np.full(len(members), 1.0 / len(members)),
                                    size=resamples)  # fmt: skip
            counts[:, members] = draws
        return counts

    return Plan("images", side(seen_class), side(unseen_class))


def make_plan(example: Credits, resampled: str, resamples: int, seed: int) -> Plan:
    """The plan of ``resampled`` (``classes`` or ``images``) for evaluations like ``example``."""
    if resampled == "classes":
        return class_plan(*example.sizes, resamples, seed)
    if resampled == "images":
        return image_plan(example.seen_class, example.unseen_class, resamples, seed)
    raise ValueError(f"resampled={resampled!r}: use one of {RESAMPLED}.")


def _class_means(plan: Plan, side: str, credits: np.ndarray, classes: np.ndarray, n: int):
    """Per resample, the mean per-class accuracy of one side (R)."""
    weights = plan.seen if side == "seen" else plan.unseen
    sizes = np.bincount(classes, minlength=n).astype(np.float64)
    if plan.resampled == "classes":
        accuracy = np.bincount(classes, weights=credits, minlength=n) / sizes
        return weights @ accuracy / n
    per_class = np.empty((plan.resamples, n))  # each class's images drawn as often as it holds
    for c in range(n):
        members = np.flatnonzero(classes == c)
        per_class[:, c] = weights[:, members].astype(np.float64) @ credits[members] / sizes[c]
    return per_class.mean(axis=1)


def harmonic(s: np.ndarray, u: np.ndarray) -> np.ndarray:
    total = s + u
    return np.where(total > 0, 2 * s * u / np.where(total > 0, total, 1.0), 0.0)


def resample_metrics(credits: Credits, plan: Plan) -> dict[str, np.ndarray]:
    """Every metric of :data:`METRICS` in every resample of ``plan`` (arrays of length R)."""
    s_n, u_n = credits.sizes
    seen, unseen = credits.seen_class, credits.unseen_class

    def side_means(seen_credits, unseen_credits):
        return (
            _class_means(plan, "seen", seen_credits, seen, s_n),
            _class_means(plan, "unseen", unseen_credits, unseen, u_n),
        )

    out = {"zsl_acc": _class_means(plan, "unseen", credits.zsl, unseen, u_n)}
    s, u = side_means(credits.gzsl_seen, credits.gzsl_unseen)
    out.update(gzsl_s=s, gzsl_u=u, gzsl_H=harmonic(s, u))
    if credits.cal_seen is not None:
        out["gzsl_H_cal"] = harmonic(*side_means(credits.cal_seen, credits.cal_unseen))
    else:
        out["gzsl_H_cal"] = np.full(plan.resamples, np.nan)
    if plan.resampled == "classes":
        s_curve = plan.seen @ credits.curve_seen / s_n  # R × G, γ increasing
        u_curve = plan.unseen @ credits.curve_unseen / u_n
        # s never rises and u never falls as γ grows, so the points are already in the
        # order of ausuc()'s sort (by u, then s decreasing): trapezoids along γ.
        area = np.diff(u_curve, axis=1) * (s_curve[:, 1:] + s_curve[:, :-1]) / 2
        out["ausuc"] = area.sum(axis=1)
    else:
        out["ausuc"] = np.full(plan.resamples, np.nan)
    return out


def search_plan(searches: int, resamples: int, seed: int) -> np.ndarray:
    """The outer level of the two-level bootstrap: ``resamples`` draws of ``searches`` searches
    with replacement, as multiplicities (R × K, each row summing to K); one search: all ones
    (the class bootstrap alone)."""
    if searches == 1:
        return np.ones((resamples, 1))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(searches, np.full(searches, 1.0 / searches), size=resamples)
    return draws.astype(np.float64)


def pooled(
    runs: Sequence[Credits], plan: Plan, searches: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """A row's metrics per resample: the mean over its refits (seeds) on the same resamples.

    With ``searches`` (R × K, :func:`search_plan`) and K > 1 independent searches whose refits
    ``runs`` hold search by search (K groups of equally many seeds), the two-level bootstrap:
    in resample r the searches are drawn with multiplicities ``searches[r]``, and the row's value
    is their weighted mean of each search's mean over its seeds, all on the classes (or images)
    of ``plan``'s resample r. A row evaluated once (a reference) has no search to resample."""
    metrics = [resample_metrics(run, plan) for run in runs]
    per_run = np.stack([np.stack([r[m] for m in METRICS]) for r in metrics])  # runs × metrics × R
    k = 1 if searches is None else searches.shape[1]
    if k == 1 or len(runs) == 1 or len(runs) % k:
        values = per_run.mean(axis=0)  # metrics × R
    else:
        by_search = per_run.reshape(k, len(runs) // k, *per_run.shape[1:]).mean(axis=1)
        weights = searches.T[:, None, :]  # K × 1 × R
        values = (weights * by_search).sum(axis=0) / searches.sum(axis=1)
    return {m: values[i] for i, m in enumerate(METRICS)}


def interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of ``level`` (e.g. 0.95) of bootstrap ``samples``."""
    if np.isnan(samples).any():
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2
    low, high = np.quantile(samples, [tail, 1.0 - tail])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """``better`` when the interval of a difference lies above 0, ``worse`` below, else
    ``no detectable difference`` (the interval alone, uncorrected: :func:`holm_verdict` is the
    word ``protocol.md`` states)."""
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "no detectable difference"


def bootstrap_p_value(diff: np.ndarray) -> float:
    """Two-sided bootstrap p-value of ``diff`` (a − b per resample) against "no difference":
    twice the smaller share of resamples on either side of 0 (0 counted on both sides), with the
    +1 of a Monte-Carlo p-value so that it is never 0, at most 1. Identical rows (every
    difference 0) give 1."""
    if np.isnan(diff).any():
        return float("nan")
    n = len(diff)
    below, above = int(np.sum(diff <= 0)), int(np.sum(diff >= 0))
    return float(min(1.0, 2.0 * (min(below, above) + 1) / (n + 1)))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values of one family of tests, in the given order: the i-th
    smallest p (1-based) times (m − i + 1), made non-decreasing in that order, capped at 1.
    A test is rejected at level α when its adjusted p is below α; this controls the chance of
    any false claim in the family at α (Holm 1979)."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, i in enumerate(np.argsort(p, kind="stable")):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return [float(v) for v in adjusted]


def holm_verdict(p_holm: float, delta: float, alpha: float) -> str:
    """The word of a stated comparison: ``better``/``worse`` (by the sign of ``delta``) when its
    Holm-adjusted p-value is below ``alpha`` (1 − level), else ``no detectable difference``."""
    if not p_holm < alpha or delta == 0:
        return "no detectable difference"
    return "better" if delta > 0 else "worse"


def compare(a: np.ndarray, b: np.ndarray, delta: float, level: float) -> dict[str, float]:
    """Paired comparison of two rows' resampled values (same plan): the point difference
    ``delta``, the interval of ``a − b``, the share of resamples where ``a`` is above
    (``share_positive``, about one minus a one-sided p-value) and the two-sided ``p_value``."""
    diff = a - b
    low, high = interval(diff, level)
    share = float(np.mean(diff > 0)) if not np.isnan(diff).any() else float("nan")
    return {"delta": delta, "ci_low": low, "ci_high": high, "share_positive": share,
            "p_value": bootstrap_p_value(diff)}  # fmt: skip


# ------------------------------------------------------ probability of improvement (rliable)
#: per metric, the classes whose accuracies it averages: (credits of the seen side or None,
#: credits of the unseen side or None); AUSUC has no per-class value
PER_CLASS = {
    "zsl_acc": (None, "zsl"),
    "gzsl_s": ("gzsl_seen", None),
    "gzsl_u": (None, "gzsl_unseen"),
    "gzsl_H": ("gzsl_seen", "gzsl_unseen"),
    "gzsl_H_cal": ("cal_seen", "cal_unseen"),
}


def class_accuracies(runs: Sequence[Credits], metric: str) -> np.ndarray | None:
    """Per-class accuracy behind ``metric`` (seen classes first, then unseen, as
    :data:`PER_CLASS` names them), the mean over the row's refits; ``None`` without one."""
    if metric not in PER_CLASS:
        return None
    per_run = []
    for run in runs:
        parts = []
        for side, name in zip(("seen", "unseen"), PER_CLASS[metric], strict=True):
            if name is None:
                continue
            credits = getattr(run, name)
            if credits is None:
                return None
            classes = getattr(run, f"{side}_class")
            n = run.sizes[0 if side == "seen" else 1]
            sizes = np.bincount(classes, minlength=n).astype(np.float64)
            parts.append(np.bincount(classes, weights=credits, minlength=n) / sizes)
        per_run.append(np.concatenate(parts))
    return np.mean(per_run, axis=0)


def class_weights(plan: Plan, metric: str) -> np.ndarray:
    """The class multiplicities (R × classes) of a class plan, in :func:`class_accuracies`'
    order."""
    seen, unseen = PER_CLASS[metric]
    return np.concatenate(
        [w for w, side in ((plan.seen, seen), (plan.unseen, unseen)) if side], axis=1
    )


def prob_improvement(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None):
    """P(X > Y) over paired classes (rliable's probability of improvement, Agarwal et al. 2021):
    the share of classes where row X's accuracy is above row Y's, a tie counting 1/2. With
    ``weights`` (R × classes, a class plan), its value in every resample (R)."""
    score = (x > y).astype(np.float64) + 0.5 * (x == y)
    if weights is None:
        return float(score.mean())
    return weights @ score / weights.sum(axis=1)


# ------------------------------------------------------------- per-image credits of an evaluation
def _curve(st, local: np.ndarray, n: int, gammas: np.ndarray) -> np.ndarray:
    """Per-class accuracy (n × G) at every γ of ``gammas`` (:class:`~src.metrics.ties.Stacked`
    credits): per class, the images sorted by t and their credits cumulated, so that each γ
    reads them off with two binary searches."""
    t, as_seen, as_unseen, at_tie = (x.numpy() for x in (st.t, st.as_seen, st.as_unseen,
                                                         st.at_tie))  # fmt: skip
    out = np.empty((n, len(gammas)))
    for c in range(n):
        members = np.flatnonzero(local == c)
        order = members[np.argsort(t[members], kind="stable")]

        def cumulative(x: np.ndarray, order=order) -> np.ndarray:
            return np.concatenate([[0.0], np.cumsum(x[order])])

        cu, ct, cs = cumulative(as_unseen), cumulative(at_tie), cumulative(as_seen)
        below = np.searchsorted(t[order], gammas, side="left")  # t < γ: predicted unseen
        upto = np.searchsorted(t[order], gammas, side="right")  # t > γ: predicted seen
        out[c] = (cu[below] + ct[upto] - ct[below] + cs[-1] - cs[upto]) / len(members)
    return out


def credits_from_scores(scores, gamma: float | None) -> Credits:
    """:class:`Credits` of a :class:`~src.metrics.gzsl.GZSLScores` and its calibration γ, with
    the tie rule of :mod:`src.metrics.ties` (the credits :func:`~src.metrics.gzsl_results`
    averages)."""
    from src.metrics.ausuc import seen_unseen_curve
    from src.metrics.ties import nearest_credit, stacked

    seen, unseen = scores.seen_classes.cpu(), scores.unseen_classes.cpu()
    gammas = seen_unseen_curve(scores)[0].numpy()
    parts = {}
    for name, classes in (("seen", seen), ("unseen", unseen)):
        d = getattr(scores, f"{name}_distances").cpu()
        labels = getattr(scores, f"{name}_labels").cpu().long()
        local = (labels[:, None] == classes[None, :]).long().argmax(dim=1).numpy()
        st = stacked(d, labels, seen, unseen)
        parts[name] = (st, local, d, labels)

    def at(name: str, g: float) -> np.ndarray:
        return parts[name][0].credit(g).numpy()

    (st_s, local_s, _, _), (st_u, local_u, d_u, labels_u) = parts["seen"], parts["unseen"]
    return Credits(
        seen_class=local_s,
        unseen_class=local_u,
        zsl=nearest_credit(d_u, labels_u, unseen).numpy(),
        gzsl_seen=at("seen", 0.0),
        gzsl_unseen=at("unseen", 0.0),
        cal_seen=None if gamma is None else at("seen", float(gamma)),
        cal_unseen=None if gamma is None else at("unseen", float(gamma)),
        curve_seen=_curve(st_s, local_s, len(seen), gammas),
        curve_unseen=_curve(st_u, local_u, len(unseen), gammas),
    )
