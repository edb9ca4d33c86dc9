"""Ties between equally near classes, scored as the expected accuracy under random tie-breaking.

**The rule.** An image whose smallest distance is shared by a k-way tie is predicted as each of
the k tied classes with probability 1/k: it scores 1/k when its true class is among them, 0
otherwise (a confusion row gets 1/k in each tied column). Top-k: with ``a`` candidates strictly
nearer than the true class and ``b`` tied with it (itself included), the credit is 1 when
``a + b ≤ k``, 0 when ``a ≥ k``, else ``(k − a) / b``. Every metric is then the per-class mean
of these credits, so no class gains from where it sits in the class order.

**What counts as a tie.** Mathematically equal distances differ by rounding: in float32 the
untrained metric W = s·I gives an all-zero feature vector the distance ‖y_c‖² = 1 ± 1.2e-7 to
every L2-normalised signature, and a TF32 or bf16 product would round them 1e-4 apart. Every
evaluation therefore computes its distances in float64
(:meth:`~src.models.classifier.ZSLClassifier.exact_distances`, whatever the training
precision), where such distances differ by about 1e-16. Two candidates tie for an image when
their distances differ by at most the relative tolerance of their dtype
(:data:`TIE_RTOL_F64` = 1e-9 for float64; :data:`TIE_RTOL` for float32 distances, e.g. those
kept by earlier versions) × the largest |distance| of that image among the candidates
considered (the unseen classes for ZSL, seen ∪ unseen for GZSL); the tie set of the nearest
class is every candidate within that of the smallest distance (top-k measures ``a`` and
``b`` from the true class's distance instead: the two agree whenever tied distances lie within
the tolerance of one another, as rounding ties do). On APY (attribute
annotations as features) the rounding spread of such ties is at most 2.4e-7 of the largest
distance and the smallest genuine gap between two classes' distances of one image is 5.4e-7
(README, "How ties count"): ``TIE_RTOL`` = 3 float32 ε = 3.6e-7 lies between them, with a
margin of 1.5× on either side; ``TIE_RTOL_F64`` has seven orders of magnitude on one side and
500× on the other.

**Calibrated stacking** (:class:`Stacked`): per image, ``d_s``, ``k_s``, ``hit_s`` are the
smallest seen distance, the size of its tie set and whether the true class is in it; ``d_u``,
``k_u``, ``hit_u`` the same over the unseen classes; ``t = d_u − d_s`` (exactly 0 when
``|t|`` is within the tolerance). At γ the image scores ``hit_s / k_s`` when γ < t (predicted
seen), ``hit_u / k_u`` when γ > t, and ``(hit_s + hit_u) / (k_s + k_u)`` at γ = t (the whole
tie). γ = 0 gives the uncalibrated GZSL credit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: relative tolerance of a tie between float32 (or coarser) distances: 3 float32 ε ≈ 3.6e-7 of
#: the image's largest |distance| (distances kept by earlier versions, or given by hand)
TIE_RTOL = 3 * float(torch.finfo(torch.float32).eps)
#: relative tolerance of a tie between float64 distances, which every evaluation now computes
#: (:meth:`~src.models.classifier.ZSLClassifier.exact_distances`): 1e-9, seven orders of
#: magnitude above float64 rounding (2.2e-16 per operation) and 500 times below the smallest
#: genuine gap measured on APY (5.4e-7)
TIE_RTOL_F64 = 1e-9


def relative_tolerance(dtype: torch.dtype) -> float:
    """The tie tolerance of distances of this dtype: :data:`TIE_RTOL_F64` for float64,
    :data:`TIE_RTOL` for anything coarser."""
    return TIE_RTOL_F64 if dtype == torch.float64 else TIE_RTOL


def tolerance(distances: Tensor) -> Tensor:
    """The tolerance of each row (float64, N): the largest |distance| of the given columns times
    the relative tolerance of their dtype (:func:`relative_tolerance`)."""
    d = distances.double()
    if d.shape[1] == 0:
        return torch.zeros(len(d), dtype=torch.float64, device=d.device)
    return relative_tolerance(distances.dtype) * d.abs().amax(dim=1)


def nearest_ties(distances: Tensor, tol: Tensor | None = None) -> Tensor:
    """N × K: which of the K given columns tie with each row's smallest distance.

    Example:
        >>> nearest_ties(torch.tensor([[1.0, 1.0 + 1e-7, 1.001], [0.2, 0.5, 0.2]])).tolist()
        [[True, True, False], [True, False, True]]
    """
    tol = tolerance(distances) if tol is None else tol
    d = distances.double()
    return d <= (d.amin(dim=1) + tol)[:, None]


def nearest_credit(distances: Tensor, labels: Tensor, candidates: Tensor) -> Tensor:
    """Expected top-1 hit of every image among ``candidates``: 1/k for a k-way tie holding its
    true class, else 0 (float64, N). ``distances`` holds every dataset class (N × C).

    Example:
        >>> d = torch.tensor([[0.5, 0.5, 0.5], [0.1, 0.3, 0.1]])  # a 3-way and a 2-way tie
        >>> nearest_credit(d, torch.tensor([2, 1]), torch.tensor([0, 1, 2])).tolist()
        [0.3333333333333333, 0.0]
    """
    candidates = candidates.to(distances.device)
    ties = nearest_ties(distances[:, candidates])
    hit = (ties & (candidates[None, :] == labels.to(distances.device)[:, None])).any(dim=1)
    return hit.double() / ties.sum(dim=1).clamp_min(1)


def topk_credit(distances: Tensor, labels: Tensor, candidates: Tensor, k: int) -> Tensor:
    """Expected top-k hit of every image among ``candidates`` (float64, N): with ``a``
    candidates strictly nearer than the true class and ``b`` tied with it, 1 when ``a + b ≤ k``,
    0 when ``a ≥ k``, else ``(k − a) / b``; 0 when the true class is not a candidate.

    Example:
        >>> d = torch.tensor([[0.1, 0.5, 0.5, 0.5]])  # class 2 shares rank 2–4 with two others
        >>> topk_credit(d, torch.tensor([2]), torch.arange(4), k=2).tolist()
        [0.3333333333333333]
    """
    candidates = candidates.to(distances.device)
    labels = labels.to(distances.device)
    tol = tolerance(distances[:, candidates])[:, None]
    d = distances[:, candidates].double()
    own = distances.double().gather(1, labels[:, None])
    nearer = (d < own - tol).sum(dim=1)
    tied = ((d - own).abs() <= tol).sum(dim=1)
    credit = ((k - nearer).clamp_min(0).double() / tied.clamp_min(1)).clamp_max(1.0)
    return torch.where(torch.isin(labels, candidates), credit, torch.zeros_like(credit))


def class_sums(values: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Per class, the sum of ``values`` (float64) over its images, added in an order fixed by
    the multiset of (label, value) pairs: the result does not depend on the order of the images
    (e.g. how DDP gathered them), to the last bit."""
    v = values.detach().double().cpu().numpy()
    y = labels.detach().long().cpu().numpy()
    order = np.lexsort((v, y))
    return torch.from_numpy(np.bincount(y[order], weights=v[order], minlength=num_classes))


@dataclass
class Stacked:
    """Per image of one set: what calibrated stacking needs (module docstring), float64.

    Attributes:
        t: ``d_u − d_s``, exactly 0 when the two minima tie (the critical γ of the image).
        as_seen: ``hit_s / k_s``, the credit when predicted seen (γ < t).
        as_unseen: ``hit_u / k_u``, the credit when predicted unseen (γ > t).
        at_tie: ``(hit_s + hit_u) / (k_s + k_u)``, the credit at γ = t.
        k_seen, k_unseen: ``k_s``, ``k_u`` (sizes of the nearest seen / unseen tie sets).
    """

    t: Tensor
    as_seen: Tensor
    as_unseen: Tensor
    at_tie: Tensor
    k_seen: Tensor
    k_unseen: Tensor

    def credit(self, gamma: float) -> Tensor:
        """Every image's expected hit at γ (float64, N)."""
        return torch.where(
            gamma < self.t, self.as_seen, torch.where(gamma > self.t, self.as_unseen, self.at_tie)
        )

    def tie_size(self, gamma: float = 0.0) -> Tensor:
        """How many candidates share the nearest (calibrated) distance of each image at γ."""
        return torch.where(
            gamma < self.t,
            self.k_seen,
            torch.where(gamma > self.t, self.k_unseen, self.k_seen + self.k_unseen),
        )


def stacked(distances: Tensor, labels: Tensor, seen: Tensor, unseen: Tensor) -> Stacked:
    """:class:`Stacked` of images with ``distances`` (N × C) to every dataset class and their
    dataset ``labels``; the tolerance is relative to the largest |distance| to seen ∪ unseen.

    Example:
        >>> d = torch.tensor([[0.3, 0.3, 0.3]])  # class 0 seen; 1, 2 unseen; all tied
        >>> st = stacked(d, torch.tensor([1]), torch.tensor([0]), torch.tensor([1, 2]))
        >>> st.t.tolist(), [st.credit(g).tolist() for g in (-1.0, 0.0, 1.0)]
        ([0.0], [[0.0], [0.3333333333333333], [0.5]])
    """
    labels = labels.detach().long().cpu()
    seen, unseen = seen.detach().long().cpu(), unseen.detach().long().cpu()
    tol = tolerance(distances.detach().cpu()[:, torch.cat([seen, unseen])])
    d = distances.detach().double().cpu()

    def nearest(classes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        block = d[:, classes]
        low = block.amin(dim=1)
        members = block <= (low + tol)[:, None]
        hit = (members & (classes[None, :] == labels[:, None])).any(dim=1).double()
        return low, members.sum(dim=1), hit

    d_s, k_s, hit_s = nearest(seen)
    d_u, k_u, hit_u = nearest(unseen)
    t = d_u - d_s
    t = torch.where(t.abs() <= tol, torch.zeros_like(t), t)
    return Stacked(t, hit_s / k_s, hit_u / k_u, (hit_s + hit_u) / (k_s + k_u), k_s, k_u)


class CreditSweep:
    """Calibrated stacking of one image set at any γ (:func:`~src.metrics.gzsl_sweep`): its
    critical values and, per target class, its images' credits (:class:`Stacked`: predicted
    seen, unseen, or at the tie) cumulated along the sorted critical values.

    Accuracy at any γ is then a look-up of per-class sums, divided by the class sizes and
    averaged over the classes in class order. The images are sorted by (t, class, credits) and
    every sum runs in that order, so the result depends on the multiset of images only, not on
    their order (e.g. how DDP processes gathered them), to the last bit; without ties every
    credit is 0 or 1 and the sums are exact integers.
    """

    def __init__(
        self,
        distances: Tensor,
        labels: Tensor,
        seen_classes: Tensor,
        unseen_classes: Tensor,
        target_classes: Tensor,
    ) -> None:
        labels = labels.detach().cpu().long()
        target = target_classes.cpu().long()
        size = max(distances.shape[1], int(labels.max()) + 1 if len(labels) else 0,
                   int(target.max()) + 1)  # fmt: skip
        total = torch.bincount(labels, minlength=size)
        empty = target[total[target] == 0]
        if len(empty):
            raise ValueError(
                f"classes {empty.tolist()[:10]} have no evaluation samples; per-class accuracy "
                "is undefined for them (check the split)."
            )
        local = torch.full((size,), -1, dtype=torch.long)
        local[target] = torch.arange(len(target))
        keep = (local[labels] >= 0).numpy()  # images of other classes do not enter the mean
        st = stacked(distances, labels, seen_classes, unseen_classes)
        t, cls = st.t.numpy()[keep], local[labels].numpy()[keep]
        as_seen, as_unseen, at_tie = (x.numpy()[keep] for x in (st.as_seen, st.as_unseen,
                                                                 st.at_tie))  # fmt: skip
        order = np.lexsort((at_tie, as_unseen, as_seen, cls, t))
        t, cls = t[order], cls[order]
        as_seen, as_unseen, at_tie = as_seen[order], as_unseen[order], at_tie[order]
        n = len(target)
        self.t = t
        self.unseen_before = _cumulative(cls, as_unseen, n)  # row j: images 0 … j−1
        self.seen_from = _cumulative(cls[::-1], as_seen[::-1], n)[::-1]  # row j: images j … N−1
        self.values, group = np.unique(t, return_inverse=True)
        self.at_values = np.bincount(
            group.reshape(-1) * n + cls, weights=at_tie, minlength=len(self.values) * n
        ).reshape(len(self.values), n)  # per distinct t: the credits of its images at γ = t
        self.sizes = total[target].numpy().astype(np.float64)

    def accuracy(self, gammas: Tensor) -> Tensor:
        """Per-class mean accuracy at every γ (float64, same length as ``gammas``)."""
        g = gammas.numpy()
        first = np.searchsorted(self.t, g, side="left")  # images with t < γ: predicted unseen
        last = np.searchsorted(self.t, g, side="right")  # images with t > γ: predicted seen
        right = self.unseen_before[first] + self.seen_from[last]
        on = last > first  # images with t = γ: their whole ties
        right[on] += self.at_values[np.searchsorted(self.values, g[on])]
        # numpy's pairwise sum along a row does not depend on the number of threads
        return torch.from_numpy((right / self.sizes).mean(axis=1))


def _cumulative(cls: np.ndarray, values: np.ndarray, num_classes: int) -> np.ndarray:
    """(N + 1) × C: row k holds, per class, the sum of ``values`` over the first k images."""
    sums = np.zeros((len(cls) + 1, num_classes))
    sums[np.arange(1, len(cls) + 1), cls] = values
    return np.cumsum(sums, axis=0)
