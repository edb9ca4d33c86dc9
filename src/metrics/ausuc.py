"""The seen–unseen accuracy curve and its area, AUSUC (Chao et al., ECCV 2016), exact."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from src.metrics.calibration import critical_gammas, curve_gammas, gzsl_sweep
from src.metrics.scores import GZSLScores


def seen_unseen_curve(scores: GZSLScores) -> tuple[Tensor, Tensor, Tensor]:
    """The exact seen–unseen accuracy curve: ``(γ, s, u)`` at every γ where (s, u) can change.

    From "every image predicted seen" (γ below every critical value: u = 0 when the unseen
    images' labels are unseen classes) to "every image predicted unseen" (s = 0); in between,
    one point per interval between consecutive critical values and one at each critical value
    (where tied images score a mixture of their two sides; :func:`curve_gammas`), so every
    distinct (u, s) the calibration can reach is on the curve. γ increases along it; s never
    rises and u never falls.

    Example:
        >>> scores = GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                     torch.tensor([[0.5, 1.0]]), torch.tensor([1]),
        ...                     torch.tensor([0]), torch.tensor([1]))
        >>> g, s, u = seen_unseen_curve(scores)
        >>> g.tolist(), s.tolist(), u.tolist()
        ([0.0, 0.5, 0.75, 1.0, 1.5], [1.0, 1.0, 1.0, 0.5, 0.0], [0.0, 0.5, 1.0, 1.0, 1.0])
    """
    gammas = curve_gammas(critical_gammas(scores))
    s, u, _ = gzsl_sweep(scores, gammas)
    return gammas, s, u


def ausuc(scores: GZSLScores) -> Tensor:
    """Area Under the Seen–Unseen accuracy Curve, in [0, 1].

    The curve is traced exactly, at every critical γ where a prediction flips and between them
    (:func:`seen_unseen_curve`), from "all seen" (u = 0) to "all unseen" (s = 0); its area is
    the trapezoid rule on the points (u, s) sorted by u (then by s, decreasing). A perfect
    classifier scores 1; a classifier with ZSL accuracy A_U→U and seen-only accuracy A_S→S at
    most A_U→U · A_S→S.

    Example:
        >>> perfect = GZSLScores(torch.tensor([[0.0, 1.0]]), torch.tensor([0]),
        ...                      torch.tensor([[0.5, 0.0]]), torch.tensor([1]),
        ...                      torch.tensor([0]), torch.tensor([1]))
        >>> float(ausuc(perfect))
        1.0
    """
    _, s, u = seen_unseen_curve(scores)
    # Sort by u, then by s decreasing (a vertical step is walked top-down; its area is 0).
    order = np.lexsort((-s.numpy(), u.numpy()))
    u, s = u.numpy()[order], s.numpy()[order]
    area = np.sum(np.diff(u) * (s[1:] + s[:-1]) / 2) if len(u) > 1 else 0.0
    return torch.tensor(float(area), dtype=torch.float64)
