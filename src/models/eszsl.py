"""ESZSL (Romera-Paredes & Torr, ICML 2015): a closed-form bilinear compatibility, no training loop.

With X the training features (N × d), A the seen-class signatures (|S| × k, one per row) and
Y ∈ {−1, +1}^{N × |S|} (+1 at an image's own class), ESZSL's V (d × k) is

    V = (XᵀX + γI)⁻¹ Xᵀ Y A (AᵀA + λI)⁻¹

(the paper writes the signatures as columns, S = Aᵀ: V = (XXᵀ + γI)⁻¹ X Y Sᵀ (SSᵀ + λI)⁻¹ with
images as columns). The score of image x for class c is xᵀ V a_c; the distance is its negative.
γ and λ are chosen on the validation split (train classes vs val classes) by validation ZSL
accuracy, then V is refitted with them on the run's own training images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from src.data.datamodule import ZSLDataModule, ZSLSplit
from src.metrics import per_class_nearest
from src.models.closed_form import ClosedFormClassifier, positive_values

#: 10^-3 … 10^3, the default grid of γ and of λ
DEFAULT_GRID = tuple(10.0**p for p in range(-3, 4))


class ESZSLProblem:
    """The Gram matrices of one training set, so that V is cheap for many (γ, λ). Float64.

    Args:
        features: X, N × d.
        local_labels: each image's class as a row index of ``seen_signatures`` (0 … |S| − 1).
        seen_signatures: A, |S| × k.
    """

    def __init__(self, features: Tensor, local_labels: Tensor, seen_signatures: Tensor) -> None:
        x = features.detach().cpu().double()
        a = seen_signatures.detach().cpu().double()
        labels = local_labels.detach().cpu().long()
        if len(labels) and (labels.min() < 0 or labels.max() >= len(a)):
            raise ValueError("local_labels must index rows of seen_signatures.")
        self.xtx = x.T @ x  # d × d
        # Xᵀ Y A with Y = 2·onehot − 1, without the N × |S| matrix: 2 Xᵀ A_y − (Xᵀ1)(1ᵀA).
        self.xtya = 2.0 * x.T @ a[labels] - torch.outer(x.sum(0), a.sum(0))  # d × k
        self.ata = a.T @ a  # k × k

    def left(self, gamma: float) -> Tensor:
        """(XᵀX + γI)⁻¹ XᵀYA, d × k."""
        eye = torch.eye(len(self.xtx), dtype=self.xtx.dtype)
        return torch.linalg.solve(self.xtx + gamma * eye, self.xtya)

    def weights(self, gamma: float, lam: float, left: Tensor | None = None) -> Tensor:
        """V (d × k); pass ``left = self.left(gamma)`` to reuse it across λ."""
        left = self.left(gamma) if left is None else left
        eye = torch.eye(len(self.ata), dtype=self.ata.dtype)
        # left (AᵀA + λI)⁻¹ = ((AᵀA + λI)⁻¹ leftᵀ)ᵀ, the matrix being symmetric.
        return torch.linalg.solve(self.ata + lam * eye, left.T).T


def eszsl_weights(
    features: Tensor, local_labels: Tensor, seen_signatures: Tensor, gamma: float, lam: float
) -> Tensor:
    """ESZSL's closed-form V (d × k, float64); see :class:`ESZSLProblem` for the arguments."""
    return ESZSLProblem(features, local_labels, seen_signatures).weights(gamma, lam)


def eszsl_distances(features: Tensor, weights: Tensor, signatures: Tensor) -> Tensor:
    """−xᵀVa of every image (N × d) to every signature (C × k): N × C, in V's dtype."""
    x = features.to(weights.dtype)
    return -(x @ weights) @ signatures.to(weights.dtype).T


def local_labels(labels: Tensor, seen_classes: Tensor) -> Tensor:
    """Dataset class indices → row indices of the seen classes (sorted, as the data gives them)."""
    local = torch.searchsorted(seen_classes, labels)
    if len(labels) and not bool(
        (seen_classes[local.clamp_max(len(seen_classes) - 1)] == labels).all()
    ):
        raise ValueError("every training label must be a seen class.")
    return local


def validation_grid(
    split: ZSLSplit, signatures: Tensor, gammas: Sequence[float], lambdas: Sequence[float]
) -> Tensor:
    """ZSL accuracy (per-class mean top-1 over the split's unseen classes, ties 1/k) per (γ, λ).

    ESZSL is fitted on ``split.train`` and scores ``split.eval["unseen"]`` among
    ``split.unseen_classes``; nothing else of the split is read. Returns |γ| × |λ| (float64).
    """
    seen, unseen = split.seen_classes.cpu(), split.unseen_classes.cpu()
    signatures = signatures.detach().cpu()
    problem = ESZSLProblem(
        split.train.features, local_labels(split.train.labels.cpu(), seen), signatures[seen]
    )
    eval_features = split.eval["unseen"].features.cpu()
    local = torch.searchsorted(unseen, split.eval["unseen"].labels.cpu())  # distance columns
    unseen_signatures = signatures[unseen]  # ZSL: the unseen classes are the only candidates
    grid = torch.empty(len(gammas), len(lambdas), dtype=torch.float64)
    for i, gamma in enumerate(gammas):
        left = problem.left(gamma)
        for j, lam in enumerate(lambdas):
            weights = problem.weights(gamma, lam, left)
            distances = eszsl_distances(eval_features, weights, unseen_signatures)
            grid[i, j] = per_class_nearest(distances, local, torch.arange(len(unseen)))
    return grid


class ESZSLClassifier(ClosedFormClassifier):
    """``model=eszsl``: ESZSL's closed form, with γ and λ chosen on the validation split
    (:class:`~src.models.closed_form.ClosedFormClassifier`). The choice is logged at evaluation
    as ``val/eszsl_gamma``, ``val/eszsl_lambda`` and ``val/selection_zsl_acc``; the whole grid is
    in ``selection_grid`` and the log.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        gammas: candidate γ, the ridge penalty on the feature side (all > 0).
        lambdas: candidate λ, the ridge penalty on the signature side (all > 0).
        calibration_gamma: γ of calibrated stacking in the GZSL metrics (not ESZSL's γ);
            ``None``: chosen on validation (see :class:`~src.models.classifier.ZSLClassifier`).
        gamma_grid: candidate calibration γ for that choice; ``None``: the exact best γ.
    """

    title = "ESZSL"
    grid_axes = ("gammas", "lambdas")
    validation_grid = staticmethod(validation_grid)

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        gammas: Sequence[float] = DEFAULT_GRID,
        lambdas: Sequence[float] = DEFAULT_GRID,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        gammas = positive_values("model.gammas", gammas)
        lambdas = positive_values("model.lambdas", lambdas)
        self.save_grid_hyperparameters(feature_dim, signature_dim, gammas=gammas, lambdas=lambdas)
        f64 = torch.float64
        self.register_buffer("V", torch.zeros(feature_dim, signature_dim, dtype=f64))
        self.register_buffer("selected_gamma", torch.tensor(math.nan, dtype=f64))
        self.register_buffer("selected_lambda", torch.tensor(math.nan, dtype=f64))
        self._init_selection()

    def fit_choice(self, datamodule: ZSLDataModule, row: float, column: float) -> None:
        seen = datamodule.seen_classes.cpu()
        weights = eszsl_weights(
            datamodule.train_features,
            local_labels(datamodule.train_labels.cpu(), seen),
            datamodule.signatures.cpu()[seen],
            row,
            column,
        )
        self.check_shape(weights, self.V, "eszsl", d_axis=0)
        self.V.copy_(weights)
        self.selected_gamma.fill_(row)
        self.selected_lambda.fill_(column)

    def class_distances(self, features: Tensor) -> Tensor:
        """−xᵀVa of every image to every class of the dataset (N × C, float64)."""
        return eszsl_distances(features, self.V, self.signatures)

    def chosen_metrics(self) -> dict[str, float]:
        return {
            "val/eszsl_gamma": float(self.selected_gamma),
            "val/eszsl_lambda": float(self.selected_lambda),
        }
