"""The GBU evaluation of one split: what it scores (:class:`GZSLScores`) and its metrics.

An evaluation sees every evaluation image's distances to every dataset class. The images of
seen classes and of unseen classes are told apart by their labels (the two class sets are
disjoint), so neither the order of the evaluation loaders nor the order in which DDP processes
gather their images matters. :class:`GZSLMetrics` keeps them in DDP-safe list states;
:func:`gzsl_results` turns them into the logged metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch  # noqa: F401  (the docstring examples)
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from src.metrics.ausuc import ausuc
from src.metrics.calibration import gzsl_sweep
from src.metrics.scores import GZSLScores, split_by_class
from src.metrics.ties import nearest_ties, stacked
from src.metrics.zsl import harmonic_mean, per_class_credit, per_class_nearest, per_class_topk

#: k of the top-k ZSL accuracy (``{stage}/zsl_top5``)
TOP_K = 5


class GZSLMetrics(Metric):
    """Collects an evaluation's distances and labels across batches and DDP processes.

    The states are lists concatenated across processes (``dist_reduce_fx="cat"``), so every
    metric is computed from every image of every process. :meth:`scores` returns them as
    :class:`GZSLScores`; :func:`gzsl_results` gives the metrics.

    Example:
        >>> store = GZSLMetrics(seen_classes=torch.tensor([0]), unseen_classes=torch.tensor([1]))
        >>> store.update(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([0, 1]))
        >>> scores = store.scores()
        >>> scores.seen_labels.tolist(), scores.unseen_labels.tolist()
        ([0], [1])
    """

    full_state_update = False

    def __init__(self, seen_classes: Tensor, unseen_classes: Tensor) -> None:
        super().__init__()
        self.register_buffer("seen_classes", seen_classes.clone().long(), persistent=False)
        self.register_buffer("unseen_classes", unseen_classes.clone().long(), persistent=False)
        self.add_state("distances", [], dist_reduce_fx="cat")
        self.add_state("labels", [], dist_reduce_fx="cat")

    def update(self, distances: Tensor, labels: Tensor) -> None:
        self.distances.append(distances.detach())
        self.labels.append(labels.detach().long())

    def compute(self) -> tuple[Tensor, Tensor]:
        """Every stored image's distances (N × C) and labels (N), gathered across processes."""
        if isinstance(self.distances, list) and not self.distances:
            raise ValueError("GZSLMetrics: no evaluation images were stored.")
        return dim_zero_cat(self.distances), dim_zero_cat(self.labels)

    def scores(self) -> GZSLScores:
        """:meth:`compute` split into seen-class and unseen-class images (CPU tensors)."""
        distances, labels = self.compute()
        labels = labels.reshape(-1)  # torchmetrics squeezes a single image's label
        distances = distances.reshape(len(labels), -1)
        return split_by_class(distances, labels, self.seen_classes, self.unseen_classes).cpu()


def gzsl_results(scores: GZSLScores, gamma: float | None = None) -> dict[str, float]:
    """The GBU metrics of one evaluation (keys without the ``val/``/``test/`` prefix).

    - ``zsl_acc``: per-class top-1 of the unseen images among the unseen classes;
      ``zsl_top5`` the same with the 5 nearest;
    - ``gzsl_s``, ``gzsl_u``, ``gzsl_H``: per-class top-1 among seen ∪ unseen classes;
    - ``ausuc``: the exact area under the seen–unseen curve (:func:`~src.metrics.ausuc`);
    - with ``gamma``: ``gamma``, ``gzsl_s_cal``, ``gzsl_u_cal``, ``gzsl_H_cal`` (calibrated
      stacking, γ added to the seen classes' distances);
    - ``ties``: how many images (seen and unseen) have their nearest class among seen ∪ unseen
      tied; ``zsl_ties``: how many unseen images have their nearest unseen class tied.

    Every accuracy scores a k-way tie that holds the true class 1/k, its expectation under
    uniform random tie-breaking (:mod:`src.metrics.ties`).
    """

    seen, unseen = scores.seen_classes, scores.unseen_classes
    y_seen, y_unseen = scores.seen_labels, scores.unseen_labels
    d_seen, d_unseen = scores.seen_distances, scores.unseen_distances
    stack_seen = stacked(d_seen, y_seen, seen, unseen)
    stack_unseen = stacked(d_unseen, y_unseen, seen, unseen)
    s = per_class_credit(stack_seen.credit(0.0), y_seen, seen)
    u = per_class_credit(stack_unseen.credit(0.0), y_unseen, unseen)
    tied = sum(int((st.tie_size(0.0) > 1).sum()) for st in (stack_seen, stack_unseen))
    values = {
        "zsl_acc": float(per_class_nearest(d_unseen, y_unseen, unseen)),
        "gzsl_s": float(s),
        "gzsl_u": float(u),
        "gzsl_H": float(harmonic_mean(s, u)),
        "zsl_top5": float(per_class_topk(d_unseen, y_unseen, unseen, k=TOP_K)),
        "ausuc": float(ausuc(scores)),
        "ties": float(tied),
        "zsl_ties": float((nearest_ties(d_unseen[:, unseen.to(d_unseen.device)]).sum(1) > 1).sum()),
    }
    if gamma is not None:
        s_cal, u_cal, h_cal = gzsl_sweep(scores, [gamma])
        values.update(
            gamma=float(gamma),
            gzsl_s_cal=float(s_cal[0]),
            gzsl_u_cal=float(u_cal[0]),
            gzsl_H_cal=float(h_cal[0]),
        )
    return values


@dataclass
class Evaluation:
    """One finished evaluation: its stage (``val``/``test``), scores and calibration γ."""

    stage: str
    scores: GZSLScores
    gamma: float | None = None
