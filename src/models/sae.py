"""SAE (Kodirov, Xiang & Gong, CVPR 2017): a semantic autoencoder in closed form.

With X the training features (d × N, images as columns) and S the signature of each image's
class (k × N), SAE's encoder W (k × d) minimises ``‖X − WᵀS‖² + λ‖WX − S‖²``; setting the
gradient to zero gives the Sylvester equation

    A W + W B = C,   A = S Sᵀ,  B = λ X Xᵀ,  C = (1 + λ) S Xᵀ,

solved with :func:`scipy.linalg.solve_sylvester` (the validation grid and a singular equation
use its exact eigendecomposition form, :class:`SAEProblem`). Two ways to classify (the paper's test
directions), both by cosine distance: ``feature_to_semantic`` encodes an image, ``W x``, and
compares it with the class signatures; ``semantic_to_feature`` decodes each signature,
``Wᵀ s``, and compares it with the image. The direction and λ are chosen on the validation
split by validation ZSL accuracy, as ESZSL's γ and λ are (:mod:`src.models.eszsl`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import torch
from torch import Tensor

from src.data.datamodule import ZSLDataModule, ZSLSplit
from src.metrics import per_class_nearest
from src.models.closed_form import ClosedFormClassifier, positive_values
from src.models.nearest_signature import cosine_distances

log = logging.getLogger(__name__)

#: the paper's two test directions (``val/sae_direction`` logs the index of the chosen one)
DIRECTIONS = ("feature_to_semantic", "semantic_to_feature")
#: 10^-2 … 10^6: λ weighs ‖WX − S‖² (features' scale²) against ‖X − WᵀS‖² (signatures' scale²)
DEFAULT_LAMBDAS = tuple(10.0**p for p in range(-2, 7))


class SAEProblem:
    """The Gram matrices of one training set, so that W is cheap for many λ. Float64.

    A = S Sᵀ and X Xᵀ are symmetric, so the Sylvester operator ``W ↦ A W + λ W X Xᵀ`` has the
    eigenvalues ``a_i + λ b_j`` (a, b: eigenvalues of A and X Xᵀ). It is singular when A and
    X Xᵀ share a null direction (A has rank ≤ the number of seen classes, often < k; X Xᵀ is
    singular when a feature is constant on the training images or N < d): the objective then
    ignores those components of W, and the minimum-norm solution sets them to 0.

    Args:
        features: the training images, N × d (rows, as the data gives them).
        signatures: the signature of each image's class, N × k.
    """

    #: ``a_i + λ b_j`` at or below this share of the largest counts as 0 (a shared null direction)
    SINGULAR = 1e-12

    def __init__(self, features: Tensor, signatures: Tensor) -> None:
        x = features.detach().cpu().double().numpy()
        s = signatures.detach().cpu().double().numpy()
        self.sst, self.xxt, self.sxt = s.T @ s, x.T @ x, s.T @ x  # S Sᵀ, X Xᵀ, S Xᵀ
        self._eigen: tuple[np.ndarray, ...] | None = None

    def _spectrum(self) -> tuple[np.ndarray, ...]:
        if self._eigen is None:
            a, u = np.linalg.eigh(self.sst)
            b, v = np.linalg.eigh(self.xxt)
            self._eigen = (a, u, b, v, u.T @ self.sxt @ v)
        return self._eigen

    def _null(self, lam: float) -> tuple[np.ndarray, np.ndarray]:
        """(the operator's eigenvalues a_i + λ b_j (k × d), where they count as 0)."""
        a, _, b, _, _ = self._spectrum()
        denominators = a[:, None] + lam * b[None, :]
        return denominators, denominators <= self.SINGULAR * max(denominators.max(), 1e-300)

    def weights(self, lam: float) -> Tensor:
        """W (k × d): :func:`scipy.linalg.solve_sylvester` of ``A W + W B = C``; the
        minimum-norm solution (:meth:`eigen_weights`) where the equation is singular."""
        if self._null(lam)[1].any():  # solve_sylvester would divide by ~0 there
            log.info("SAE: singular equation at λ=%g: its minimum-norm solution.", lam)
            return self.eigen_weights(lam)
        weights = scipy.linalg.solve_sylvester(self.sst, lam * self.xxt, (1 + lam) * self.sxt)
        if not np.isfinite(weights).all():
            raise ValueError(
                f"model.lambdas: SAE's solution is not finite at λ={lam:g} on this data "
                "(non-finite features?)."
            )
        return torch.from_numpy(weights)

    def eigen_weights(self, lam: float) -> Tensor:
        """The same W from the eigendecompositions ``A = U diag(a) Uᵀ``, ``X Xᵀ = V diag(b)
        Vᵀ``, computed once: ``W = U [(Uᵀ C V) / (a_i + λ b_j)] Vᵀ``, 0 where ``a_i + λ b_j``
        is 0 (the minimum-norm solution). Exact too; each further λ costs two products instead
        of two Schur decompositions (the validation grid uses it)."""
        _, u, _, v, rotated = self._spectrum()
        denominators, null = self._null(lam)
        inverse = np.where(null, 0.0, 1.0 / np.where(null, 1.0, denominators))
        return torch.from_numpy(u @ ((1 + lam) * rotated * inverse) @ v.T)


def sae_distances(features: Tensor, weights: Tensor, signatures: Tensor, direction: str) -> Tensor:
    """Cosine distance of every image (N × d) to every class (C × k) in ``direction``."""
    x, s = features.to(weights.dtype), signatures.to(weights.dtype)
    if direction == "feature_to_semantic":
        return cosine_distances(x @ weights.T, s)  # encoded image W x against a_c
    return cosine_distances(x, s @ weights)  # image against the decoded signature Wᵀ a_c


def validation_grid(
    split: ZSLSplit, signatures: Tensor, directions: Sequence[str], lambdas: Sequence[float]
) -> Tensor:
    """ZSL accuracy (per-class top-1 over the split's unseen classes, ties scored 1/k) of every
    (direction, λ): W fitted on ``split.train``, ``split.eval["unseen"]`` scored among
    ``split.unseen_classes``; nothing else of the split is read. |directions| × |λ|, float64."""
    signatures = signatures.detach().cpu()
    problem = SAEProblem(split.train.features, signatures[split.train.labels.cpu()])
    unseen = split.unseen_classes.cpu()
    eval_features = split.eval["unseen"].features.cpu()
    local = torch.searchsorted(unseen, split.eval["unseen"].labels.cpu())
    grid = torch.empty(len(directions), len(lambdas), dtype=torch.float64)
    for j, lam in enumerate(lambdas):
        weights = problem.eigen_weights(lam)
        for i, direction in enumerate(directions):
            distances = sae_distances(eval_features, weights, signatures[unseen], direction)
            grid[i, j] = per_class_nearest(distances, local, torch.arange(len(unseen)))
    return grid


class SAEClassifier(ClosedFormClassifier):
    """``model=sae``: SAE's closed form, test direction and λ chosen on the validation split
    (:class:`~src.models.closed_form.ClosedFormClassifier`; the grid fits W once per λ and
    scores both directions). W is refitted with :func:`scipy.linalg.solve_sylvester` on the
    run's own training images. The choice is logged at evaluation as ``val/sae_lambda``,
    ``val/sae_direction`` (its index in :data:`DIRECTIONS`) and ``val/selection_zsl_acc``; the
    grid is in ``selection_grid`` and the log.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data).
        lambdas: candidate λ (all > 0), the weight of the encoder's ‖WX − S‖².
        directions: candidate test directions, among :data:`DIRECTIONS`.
        calibration_gamma: γ of calibrated stacking in the GZSL metrics; ``None``: chosen on
            validation (see :class:`~src.models.classifier.ZSLClassifier`).
        gamma_grid: candidate calibration γ for that choice; ``None``: the exact best γ.
    """

    title = "SAE"
    grid_axes = ("directions", "lambdas")
    validation_grid = staticmethod(validation_grid)

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        lambdas: Sequence[float] = DEFAULT_LAMBDAS,
        directions: Sequence[str] = DIRECTIONS,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        lambdas = positive_values("model.lambdas", lambdas)
        directions = [directions] if isinstance(directions, str) else list(directions)
        if not directions or any(d not in DIRECTIONS for d in directions):
            raise ValueError(
                f"model.directions={directions} is invalid: it must be a non-empty list of "
                f"{', '.join(DIRECTIONS)}."
            )
        self.save_grid_hyperparameters(
            feature_dim, signature_dim, lambdas=lambdas, directions=directions
        )
        f64 = torch.float64
        self.register_buffer("W", torch.zeros(signature_dim, feature_dim, dtype=f64))
        self.register_buffer("selected_lambda", torch.tensor(math.nan, dtype=f64))
        self.register_buffer("selected_direction", torch.tensor(0))  # index in DIRECTIONS
        self._init_selection()

    @property
    def direction(self) -> str:
        return DIRECTIONS[int(self.selected_direction)]

    def fit_choice(self, datamodule: ZSLDataModule, row: str, column: float) -> None:
        labels = datamodule.train_labels.cpu()
        problem = SAEProblem(datamodule.train_features, datamodule.signatures.cpu()[labels])
        weights = problem.weights(column)
        self.check_shape(weights, self.W, "sae", d_axis=1)
        self.W.copy_(weights)
        self.selected_lambda.fill_(column)
        self.selected_direction.fill_(DIRECTIONS.index(row))

    def class_distances(self, features: Tensor) -> Tensor:
        """Cosine distance of every image to every class of the dataset (N × C, float64)."""
        return sae_distances(features, self.W, self.signatures, self.direction)

    def chosen_metrics(self) -> dict[str, float]:
        return {
            "val/sae_lambda": float(self.selected_lambda),
            "val/sae_direction": float(self.selected_direction),
        }
