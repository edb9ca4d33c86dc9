"""Calibrated stacking (Chao et al., ECCV 2016): the GZSL sweep over γ and the choice of γ.

Everything works on :class:`~src.metrics.gzsl.GZSLScores` (distances of N images × C dataset
classes, smaller = more consistent, and the images' dataset labels). Calibrated stacking
penalises the seen classes by γ before the decision: with distances that means *adding* γ to the
seen classes' distances, so γ > 0 moves predictions towards the unseen classes and γ < 0
towards the seen ones.

How γ acts on one image: let ``d_s`` be its smallest distance to a seen class and ``d_u`` its
smallest distance to an unseen class. The image is predicted among its nearest seen classes for
``γ < t = d_u − d_s``, among its nearest unseen classes for ``γ > t``, and at its *critical*
value ``γ = t`` the seen and unseen minima tie. Ties are scored by their expectation under
uniform random tie-breaking (:class:`~src.metrics.ties.Stacked`): 1/k for a k-way tie holding
the true class, the whole tie (seen and unseen tied classes together) at γ = t; ``t`` is exactly
0 when ``|d_u − d_s|`` is within the tie tolerance. Between two consecutive critical values no
credit changes; at a critical value the accuracies are a mixture of those on either side.

Per-class accuracies are averaged over the target classes themselves (seen classes for ``s``,
unseen classes for ``u``), as in :mod:`src.metrics.zsl`; a class that is never predicted counts
with accuracy 0, a target class without images raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from src.metrics.scores import GZSLScores
from src.metrics.ties import CreditSweep, stacked
from src.metrics.zsl import harmonic_mean

#: H values closer than this to the maximum count as ties in :func:`choose_gamma` (distances
#: that tie are :data:`~src.metrics.ties.TIE_RTOL`'s business)
TIE_TOLERANCE = 1e-12


# ----------------------------------------------------------------------------- the sweep
def _as_gammas(gammas: Sequence[float] | Tensor | float) -> Tensor:
    return torch.as_tensor(gammas, dtype=torch.float64).reshape(-1).cpu()


def gzsl_sweep(
    scores: GZSLScores, gammas: Sequence[float] | Tensor | float
) -> tuple[Tensor, Tensor, Tensor]:
    """Calibrated GZSL ``(s, u, H)`` at every γ of ``gammas``, in O((N + G) log N).

    Every image is ranked among seen ∪ unseen with γ added to the seen classes' distances.
    ``s`` is the per-class mean top-1 over the seen classes on the seen images, ``u`` the same
    over the unseen classes on the unseen images, ``H = 2us / (u + s)``. γ = 0 gives the
    uncalibrated GZSL metrics.

    Returns:
        ``(s, u, H)``, three float64 tensors of the length of ``gammas``.

    Example:
        >>> scores = GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),  # seen image
        ...                     torch.tensor([[0.5, 1.0]]), torch.tensor([1]),  # unseen image
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> s, u, h = gzsl_sweep(scores, [0.0, 0.7, 2.0])
        >>> s.tolist(), u.tolist()
        ([1.0, 1.0, 0.0], [0.0, 1.0, 1.0])
    """
    gammas = _as_gammas(gammas)
    seen, unseen = scores.seen_classes, scores.unseen_classes
    seen_flips = CreditSweep(scores.seen_distances, scores.seen_labels, seen, unseen, seen)
    unseen_flips = CreditSweep(scores.unseen_distances, scores.unseen_labels, seen, unseen, unseen)
    s, u = seen_flips.accuracy(gammas), unseen_flips.accuracy(gammas)
    return s, u, harmonic_mean(s, u)


def critical_gammas(scores: GZSLScores) -> Tensor:
    """The sorted, distinct γ at which some image's calibrated prediction flips (float64).

    An image flips from its nearest seen classes to its nearest unseen classes as γ passes
    ``t = min_unseen d − min_seen d`` (0 when the two tie); between two consecutive critical
    values no credit changes.

    Example:
        >>> critical_gammas(GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                            torch.tensor([[0.5, 1.0]]), torch.tensor([1]),
        ...                            torch.tensor([0]), torch.tensor([1]))).tolist()
        [0.5, 1.0]
    """
    seen, unseen = scores.seen_classes, scores.unseen_classes
    t = torch.cat([
        stacked(scores.seen_distances, scores.seen_labels, seen, unseen).t,
        stacked(scores.unseen_distances, scores.unseen_labels, seen, unseen).t,
    ])  # fmt: skip
    return t.unique(sorted=True)


def curve_gammas(critical: Tensor) -> Tensor:
    """:func:`interval_gammas` and the critical values themselves, interleaved (increasing):
    every distinct (s, u) that γ can reach, in the order γ reaches them."""
    return torch.cat([interval_gammas(critical), critical]).sort().values


def interval_gammas(critical: Tensor) -> Tensor:
    """One γ inside every interval where no prediction changes, in increasing order.

    The midpoints between consecutive critical values, plus one γ below the smallest (every
    image predicted seen) and one above the largest (every image predicted unseen), at a
    distance of the mean gap between critical values (1 when there is a single one).
    """
    if len(critical) == 0:
        return torch.zeros(1, dtype=torch.float64)
    gap = (critical[-1] - critical[0]) / (len(critical) - 1) if len(critical) > 1 else 1.0
    gap = float(gap) if float(gap) > 0 else 1.0
    middles = (critical[1:] + critical[:-1]) / 2
    below, above = critical[:1] - gap, critical[-1:] + gap
    return torch.cat([below, middles, above])


def choose_gamma(scores: GZSLScores, gammas: Sequence[float] | Tensor | None = None) -> float:
    """The γ with the largest calibrated H on the given (validation) images.

    Pass *validation* images only: the choice reads nothing else, so test images can never
    influence it.

    Args:
        scores: the validation images' distances and labels.
        gammas: the grid. ``None``: the exact maximum over all real γ (below).

    Returns:
        With a grid: the grid γ with the largest H; ties (H within ``TIE_TOLERANCE`` of the
        maximum) go to the smallest ``|γ|``, then to the smaller γ, so γ = 0 (no calibration)
        wins whenever it is among the best.

        With ``gammas=None``: H is evaluated once per interval between consecutive critical
        values (:func:`critical_gammas`; credits are constant inside one) and at every critical
        value (where ties make it a mixture of its neighbours), which gives every H any γ can
        reach. The optimal γ form ranges of adjacent intervals and critical values. γ = 0 when
        H at 0 is optimal; otherwise the range nearest to 0 (smallest ``|γ|``; the negative
        one on an exact tie) is taken: a lone critical value is returned as it is, any other
        range gives its centre rounded to the fewest significant digits that keep it strictly
        inside (an unbounded range: its point of :func:`interval_gammas`, rounded the same
        way). The rounding makes γ insensitive to the float noise of the distances (e.g. BLAS
        reduction order), which moves the critical values by ~1e-6 but not which images flip
        in which order.

    Example:
        >>> scores = GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                     torch.tensor([[0.5, 1.0]]), torch.tensor([1]),
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> choose_gamma(scores, [0.0, 0.7, 0.9, 2.0])
        0.7
        >>> choose_gamma(scores)  # the optimal range is (0.5, 1.0)
        0.8
    """
    if gammas is not None:
        grid = _as_gammas(gammas)
        if len(grid) == 0:
            raise ValueError("choose_gamma needs at least one candidate γ.")
        _, _, h = gzsl_sweep(scores, grid)
        best = grid[h >= h.max() - TIE_TOLERANCE]
        return float(sorted(best.tolist(), key=lambda g: (abs(g), g))[0])

    critical = critical_gammas(scores)
    points = interval_gammas(critical)  # interval k is (critical[k-1], critical[k])
    steps = curve_gammas(critical)  # interval 0, critical 0, interval 1, …: element e
    _, _, h = gzsl_sweep(scores, steps)
    best = (h >= h.max() - TIE_TOLERANCE).tolist()
    inf = math.inf
    bounds = [-inf, *critical.tolist(), inf]

    def extent(e: int) -> tuple[float, float]:  # an open interval, or one critical value
        return (bounds[e // 2], bounds[e // 2 + 1]) if e % 2 == 0 else (bounds[e // 2 + 1],) * 2

    ranges = []  # [lower, upper, first element, last element] of each run of optimal elements
    for e, ok in enumerate(best):
        if not ok:
            continue
        low, high = extent(e)
        if (low < 0.0 < high) or (e % 2 == 1 and low == 0.0):
            return 0.0
        if ranges and ranges[-1][3] == e - 1:
            ranges[-1][1], ranges[-1][3] = high, e
        else:
            ranges.append([low, high, e, e])

    def distance_to_zero(r: list) -> tuple[float, float]:
        return (r[0] if r[0] >= 0 else -r[1], r[0])

    lower, upper, first, last = min(ranges, key=distance_to_zero)
    if first == last and first % 2 == 1:
        return lower  # a lone critical value: only γ = t reaches its mixture
    if math.isinf(lower) or math.isinf(upper):
        centre = float(points[first // 2] if math.isinf(lower) else points[last // 2])
        lower = centre - 1.0 if math.isinf(lower) else lower
        upper = centre + 1.0 if math.isinf(upper) else upper
    else:
        centre = (lower + upper) / 2
    return _shortest_inside(centre, lower, upper)


def _shortest_inside(value: float, lower: float, upper: float) -> float:
    """``value`` rounded to the fewest significant digits that keep it in (lower, upper)."""
    for digits in range(1, 18):
        rounded = float(f"{value:.{digits - 1}e}")
        if lower < rounded < upper:
            return rounded
    return value
