"""What an evaluation scores: every evaluation image's distances to every dataset class, split
into the seen-class and the unseen-class images (:class:`GZSLScores`).

A module of its own, below every metric: :mod:`~src.metrics.gzsl`, :mod:`~src.metrics.calibration`
and :mod:`~src.metrics.ausuc` all read it, and none of them needs another to build it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor


@dataclass
class GZSLScores:
    """Distances and labels of one evaluation (N × C distances to every dataset class).

    Attributes:
        seen_distances: distances of the seen-class images (N_s × C).
        seen_labels: their dataset classes (N_s).
        unseen_distances: distances of the unseen-class images (N_u × C).
        unseen_labels: their dataset classes (N_u).
        seen_classes: dataset indices of the seen classes (those calibration penalises).
        unseen_classes: dataset indices of the unseen classes.
    """

    seen_distances: Tensor
    seen_labels: Tensor
    unseen_distances: Tensor
    unseen_labels: Tensor
    seen_classes: Tensor
    unseen_classes: Tensor

    @property
    def candidates(self) -> Tensor:
        """Seen then unseen classes: the GZSL candidates (ties scored by their expectation)."""
        return torch.cat([self.seen_classes, self.unseen_classes])

    def cpu(self) -> GZSLScores:
        return GZSLScores(*(getattr(self, f.name).detach().cpu() for f in fields(self)))


def split_by_class(
    distances: Tensor, labels: Tensor, seen_classes: Tensor, unseen_classes: Tensor
) -> GZSLScores:
    """:class:`GZSLScores` of a mixed set of images: the seen-class rows, the unseen-class rows.

    Raises:
        ValueError: when an image belongs to neither class set.
    """
    seen = torch.isin(labels, seen_classes.to(labels.device))
    unseen = torch.isin(labels, unseen_classes.to(labels.device))
    stray = labels[~(seen | unseen)]
    if len(stray):
        raise ValueError(
            f"evaluation images of classes {stray.unique().tolist()[:10]} belong to neither the "
            "seen nor the unseen classes (check the split)."
        )
    return GZSLScores(
        distances[seen], labels[seen], distances[unseen], labels[unseen],
        seen_classes, unseen_classes,
    )  # fmt: skip
