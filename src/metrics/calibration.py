"""Calibrated stacking (Chao et al., ECCV 2016): the GZSL sweep over γ and the choice of γ.

Everything works on :class:`~src.metrics.gzsl.GZSLScores` (distances of N images × C dataset
classes, smaller = more consistent, and the images' dataset labels). Calibrated stacking
penalises the seen classes by γ before the decision: with distances that means *adding* γ to the
seen classes' distances, so γ > 0 moves predictions towards the unseen classes and γ < 0
towards the seen ones.

How γ acts on one image: let ``d_s`` be its smallest distance to a seen class (reached at class
``p_s``) and ``d_u`` its smallest distance to an unseen class (class ``p_u``). The calibrated
prediction among seen ∪ unseen is ``p_s`` when ``d_s + γ ≤ d_u`` and ``p_u`` otherwise (a tie
goes to the seen class, as ``argmin`` over ``[seen, unseen]`` gives it). So the image flips from
seen to unseen at its *critical* value ``t = d_u − d_s``: predicted seen for ``γ ≤ t``, unseen for
``γ > t``. The sweep functions below use this rule on float64 differences; they equal
:func:`~src.metrics.zsl.calibrated_predictions` except for a γ within rounding of a critical
value.

Per-class accuracies are averaged over the target classes themselves (seen classes for ``s``,
unseen classes for ``u``), as in :mod:`src.metrics.zsl`; a class that is never predicted counts
with accuracy 0, a target class without images raises.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from src.metrics.gzsl import GZSLScores
from src.metrics.zsl import harmonic_mean

#: H values closer than this to the maximum count as ties in :func:`choose_gamma`
TIE_TOLERANCE = 1e-12


# ----------------------------------------------------------------------------- the sweep
class _Flips:
    """One image set's critical values and, per target class, how many of its images are right
    when predicted seen / unseen, cumulated along the sorted critical values.

    Accuracy at any γ is then a look-up of integer counts per class, divided by the class sizes
    and averaged over the classes in class order: the result depends on the multiset of images
    only, not on their order (e.g. how DDP processes gathered them), and is exact up to that one
    division and mean.
    """

    def __init__(
        self,
        distances: Tensor,
        labels: Tensor,
        seen_classes: Tensor,
        unseen_classes: Tensor,
        target_classes: Tensor,
    ) -> None:
        d = distances.detach().double().cpu()
        labels = labels.detach().cpu().long()
        seen, unseen = seen_classes.cpu().long(), unseen_classes.cpu().long()
        target = target_classes.cpu().long()
        d_seen, i_seen = d[:, seen].min(dim=1)
        d_unseen, i_unseen = d[:, unseen].min(dim=1)
        size = max(d.shape[1], int(labels.max()) + 1 if len(labels) else 0, int(target.max()) + 1)
        total = torch.bincount(labels, minlength=size)
        empty = target[total[target] == 0]
        if len(empty):
            raise ValueError(
                f"classes {empty.tolist()[:10]} have no evaluation samples; per-class accuracy "
                "is undefined for them (check the split)."
            )
        local = torch.full((size,), -1, dtype=torch.long)
        local[target] = torch.arange(len(target))
        keep = local[labels] >= 0  # images of other classes do not enter the mean
        t = (d_unseen - d_seen)[keep]
        right_seen = (seen[i_seen] == labels)[keep]
        right_unseen = (unseen[i_unseen] == labels)[keep]
        self.t, order = t.sort()
        cls = local[labels][keep][order]
        self.cum_seen = _cumulative_counts(cls, right_seen[order], len(target))
        self.cum_unseen = _cumulative_counts(cls, right_unseen[order], len(target))
        self.sizes = total[target].numpy().astype(np.float64)

    def accuracy(self, gammas: Tensor) -> Tensor:
        """Per-class mean accuracy at every γ (float64, same length as ``gammas``)."""
        first_seen = torch.searchsorted(self.t, gammas, right=False)  # images with t ≥ γ
        right = self.cum_seen[-1] - self.cum_seen[first_seen] + self.cum_unseen[first_seen]
        # numpy's pairwise sum along a row does not depend on the number of threads
        return torch.from_numpy((right.numpy() / self.sizes).mean(axis=1))


def _cumulative_counts(cls: Tensor, flag: Tensor, num_classes: int) -> Tensor:
    """(N + 1) × C: row k counts, per class, the flagged images among the first k."""
    counts = torch.zeros(len(cls) + 1, num_classes, dtype=torch.long)
    rows = torch.arange(1, len(cls) + 1)
    counts[rows[flag], cls[flag]] = 1
    return counts.cumsum(dim=0)


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
    seen_flips = _Flips(scores.seen_distances, scores.seen_labels, seen, unseen, seen)
    unseen_flips = _Flips(scores.unseen_distances, scores.unseen_labels, seen, unseen, unseen)
    s, u = seen_flips.accuracy(gammas), unseen_flips.accuracy(gammas)
    return s, u, harmonic_mean(s, u)


def critical_gammas(scores: GZSLScores) -> Tensor:
    """The sorted, distinct γ at which some image's calibrated prediction flips (float64).

    An image flips from its nearest seen class to its nearest unseen class as γ passes
    ``min_unseen d − min_seen d``; between two consecutive critical values no prediction changes.

    Example:
        >>> critical_gammas(GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                            torch.tensor([[0.5, 1.0]]), torch.tensor([1]),
        ...                            torch.tensor([0]), torch.tensor([1]))).tolist()
        [0.5, 1.0]
    """
    d = torch.cat([scores.seen_distances.detach().double().cpu(),
                   scores.unseen_distances.detach().double().cpu()])  # fmt: skip
    seen, unseen = scores.seen_classes.cpu(), scores.unseen_classes.cpu()
    t = d[:, unseen].min(dim=1).values - d[:, seen].min(dim=1).values
    return t.unique(sorted=True)


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
        values (:func:`critical_gammas`; predictions are constant inside one), which gives every
        H any γ can reach. The optimal γ form ranges of adjacent intervals. γ = 0 when it lies
        in one; otherwise the range nearest to 0 (smallest ``|γ|``; the negative one on an
        exact tie) is taken, and γ is its centre rounded to the fewest significant digits
        that keep it strictly inside (an unbounded range: its point of
        :func:`interval_gammas`, rounded the same way). The rounding makes γ insensitive to
        the float noise of the distances (e.g. BLAS reduction order), which moves the
        critical values by ~1e-6 but not which images flip in which order.

    Example:
        >>> scores = GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                     torch.tensor([[0.5, 1.0]]), torch.tensor([1]),
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> choose_gamma(scores, [0.0, 0.7, 0.9, 2.0])
        0.7
        >>> choose_gamma(scores)  # the optimal range is (0.5, 1.0]
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
    points = interval_gammas(critical)  # interval k is (critical[k-1], critical[k]]
    _, _, h = gzsl_sweep(scores, points)
    best = (h >= h.max() - TIE_TOLERANCE).tolist()
    inf = math.inf
    bounds = [-inf, *critical.tolist(), inf]
    ranges = []  # (lower, upper, first interval, last interval) of each run of optimal intervals
    for k, ok in enumerate(best):
        if not ok:
            continue
        if ranges and ranges[-1][3] == k - 1:
            ranges[-1][1], ranges[-1][3] = bounds[k + 1], k
        else:
            ranges.append([bounds[k], bounds[k + 1], k, k])
    for lower, upper, _, _ in ranges:
        if lower < 0.0 <= upper:
            return 0.0

    def distance_to_zero(r: list) -> tuple[float, float]:
        return (r[0] if r[0] >= 0 else -r[1], r[0])

    lower, upper, first, last = min(ranges, key=distance_to_zero)
    if math.isinf(lower) or math.isinf(upper):
        centre = float(points[first] if math.isinf(lower) else points[last])
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
