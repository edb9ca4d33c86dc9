"""Training-free reference: each image goes to the class whose signature is most cosine-similar."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from src.models.classifier import ZSLClassifier


def cosine_distances(features: Tensor, signatures: Tensor) -> Tensor:
    """``1 − cos(x, a)`` of every image (N × d) to every signature (C × d): N × C, in [0, 2].

    A zero vector has cosine 0 with everything (distance 1).
    """
    x = torch.nn.functional.normalize(features, dim=1)
    a = torch.nn.functional.normalize(signatures.to(features.dtype), dim=1)
    return 1.0 - x @ a.T


class NearestSignatureClassifier(ZSLClassifier):
    """``model=nearest_signature``: distance = 1 − cos(image features, class signature).

    Nothing is learnt, so it only makes sense where the features live in the signature space
    (e.g. ``data=apy_annotations``: per-object attribute annotations against per-class
    attribute means). It is the reference a learnt model must beat on such data.

    Args:
        feature_dim: d (given by the data).
        signature_dim: k (given by the data); must equal d.
        calibration_gamma: γ of the calibrated GZSL metrics; ``None``: chosen on validation
            (see :class:`~src.models.classifier.ZSLClassifier`).
        gamma_grid: candidate γ for that choice; ``None``: the exact best γ.

    Raises:
        ValueError: when d ≠ k.
    """

    trainable = False

    def __init__(
        self,
        feature_dim: int,
        signature_dim: int,
        calibration_gamma: float | None = None,
        gamma_grid: Sequence[float] | None = None,
    ) -> None:
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        if feature_dim != signature_dim:
            raise ValueError(
                "model=nearest_signature compares image features with class signatures directly "
                f"(cosine), so it needs feature_dim == signature_dim, but the data gives "
                f"feature_dim={feature_dim} and signature_dim={signature_dim}: use model=eszsl "
                "or model=metric, which learn a map between the two spaces."
            )
        self.save_hyperparameters(logger=False)  # the job logs its whole config

    def class_distances(self, features: Tensor) -> Tensor:
        """``1 − cos`` of every image to every class of the dataset (N × C)."""
        return cosine_distances(features, self.signatures)
