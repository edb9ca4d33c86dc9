"""The LightningDataModule that owns the seen/unseen split logic for every dataset.

Datasets subclass :class:`ZSLDataModule` and implement :meth:`load_arrays`; everything else
(GBU splits, the held-out "val seen" images, standardisation, loaders) happens here once, the
split rules themselves in :mod:`src.data.splits`.
"""

from __future__ import annotations

import logging
from abc import abstractmethod

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

from src.data.arrays import DataError, ZSLArrays
from src.data.batches import IndexedImages, index_loader
from src.data.splits import ZSLSplit, build_split, split_indices

log = logging.getLogger(__name__)

SPLIT_MODES = ("val", "test")
AUTO = "auto"


def _auto_or_bool(key: str, value: bool | str) -> bool | str:
    """``data.<key>`` must be true, false or "auto" (decided from the data at setup)."""
    if isinstance(value, bool) or value == AUTO:
        return value
    raise ValueError(f"data.{key}={value!r} is invalid: use true, false or auto.")


class ZSLDataModule(L.LightningDataModule):
    """Seen/unseen splits of a zero-shot dataset.

    ``split_mode="val"`` trains on the ``train`` classes and evaluates on the ``val`` classes
    (unseen) and on ``val_seen_fraction`` of the train-class images held out per class (seen),
    so that validation GZSL is defined. ``split_mode="test"`` trains on ``trainval`` and
    evaluates on ``test_seen`` and ``test_unseen``.

    Args:
        split_mode: ``"val"`` or ``"test"``.
        batch_size: training images per batch (each brings its positive and K negatives).
        eval_batch_size: images per evaluation batch.
        standardise: standardise features per dimension with statistics of the training images;
            ``"auto"``: off for features that are attribute vectors (see
            :meth:`preprocessing_for`), on otherwise.
        l2_features: L2-normalise each image's features (after standardisation); ``"auto"``:
            on for attribute-vector features, off otherwise.
        l2_signatures: L2-normalise each class signature; ``"auto"``: on when the features live
            in the signature space (d = k, attribute signatures), off otherwise.
        val_seen_fraction: share of each train class's images held out as "val seen".
        seed: seed of the data order and of the held-out draw.
        features_on_device: keep the features on the training device (GPU) for the whole run,
            so that a batch is gathered there by index, with no host-to-device copy per step.
    """

    def __init__(
        self,
        split_mode: str = "val",
        batch_size: int = 256,
        eval_batch_size: int = 4096,
        standardise: bool | str = True,
        l2_features: bool | str = False,
        l2_signatures: bool | str = False,
        val_seen_fraction: float = 0.2,
        seed: int = 0,
        features_on_device: bool = True,
    ) -> None:
        super().__init__()
        if split_mode not in SPLIT_MODES:
            raise ValueError(
                f"data.split_mode='{split_mode}' is invalid: use one of {SPLIT_MODES}."
            )
        if not 0.0 < val_seen_fraction < 1.0:
            raise ValueError(
                f"data.val_seen_fraction={val_seen_fraction} is invalid: it must lie in (0, 1)."
            )
        self.split_mode, self.batch_size, self.eval_batch_size = (
            split_mode,
            batch_size,
            eval_batch_size,
        )
        self.standardise = _auto_or_bool("standardise", standardise)
        self.l2_features = _auto_or_bool("l2_features", l2_features)
        self.l2_signatures = _auto_or_bool("l2_signatures", l2_signatures)
        self.val_seen_fraction, self.seed = val_seen_fraction, seed
        self.features_on_device = features_on_device
        self.arrays: ZSLArrays | None = None

    #: what the class signatures are: "attributes" (att, original_att, generated ones), "text"
    #: (text embeddings) or "clip" (CLIP text embeddings beside the same model's image features)
    signature_kind: str = "attributes"

    @abstractmethod
    def load_arrays(self) -> ZSLArrays:
        """Return the dataset's arrays (features, labels, signatures, names, GBU splits)."""

    def setup(self, stage: str | None = None) -> None:
        if self.arrays is not None:
            return
        self.arrays = self.load_arrays()
        self.standardise, self.l2_features, self.l2_signatures = self.preprocessing_for(self.arrays)
        signatures = torch.as_tensor(self.arrays.signatures, dtype=torch.float32)
        exact = signatures.double()
        if self.l2_signatures:
            signatures = torch.nn.functional.normalize(signatures, dim=1)
            exact = torch.nn.functional.normalize(exact, dim=1)
        self.signatures = signatures
        #: the same signatures preprocessed in float64, for evaluation (``ZSLClassifier.
        #: exact_distances``): L2-normalised rows then have the norm 1 to 1e-16, so an all-zero
        #: image is equally near every class to float64 rounding, not to float32's
        self.exact_signatures = exact
        self.class_names = self.arrays.class_names
        split = self.make_split(self.split_mode)
        self.train_images, self.eval_images = split.train, split.eval
        self.seen_classes, self.unseen_classes = split.seen_classes, split.unseen_classes
        log.info(
            "%s (split_mode=%s): %d training images of %d seen classes; evaluation on %d seen "
            "and %d unseen images (%d unseen classes); d=%d, k=%d; standardise=%s, "
            "l2_features=%s, l2_signatures=%s",
            self.arrays.source,
            self.split_mode,
            len(split.train),
            len(split.seen_classes),
            len(split.eval["seen"]),
            len(split.eval["unseen"]),
            len(split.unseen_classes),
            self.feature_dim,
            self.signature_dim,
            self.standardise,
            self.l2_features,
            self.l2_signatures,
        )

    def preprocessing_for(self, arrays: ZSLArrays) -> tuple[bool, bool, bool]:
        """(standardise, l2_features, l2_signatures), each ``"auto"`` decided from the data.

        Features are *attribute vectors* when they live in the signature space (d = k with
        attribute signatures, e.g. per-image attribute annotations against class attributes) or
        hold only 0/1 values. Those are compared by direction, as the nearest-signature
        reference does: L2-normalised, not standardised (standardising with seen-class
        statistics inflates the attributes that are rare among seen classes). Other features
        (CNN activations) are standardised per dimension. The choice was made on validation
        data (README, "Defaults on real data").
        """
        in_space = self._in_signature_space(arrays.features.shape[1], arrays.signatures.shape[1])
        attribute_vectors = in_space or bool(np.isin(arrays.features, (0.0, 1.0)).all())
        return (
            (not attribute_vectors) if self.standardise == AUTO else self.standardise,
            attribute_vectors if self.l2_features == AUTO else self.l2_features,
            in_space if self.l2_signatures == AUTO else self.l2_signatures,
        )

    @property
    def features_in_signature_space(self) -> bool:
        """d = k and the signatures are attribute vectors, or CLIP text embeddings beside the same
        model's image features: ``model.init=auto`` starts from W = I."""
        return self._in_signature_space(self.feature_dim, self.signature_dim)

    def _in_signature_space(self, feature_dim: int, signature_dim: int) -> bool:
        return feature_dim == signature_dim and self.signature_kind != "text"

    def make_split(self, split_mode: str, fitted_on: str | None = None) -> ZSLSplit:
        """The images of ``split_mode`` ("val" or "test"), standardised on training images.

        ``setup`` builds the configured mode; models that select hyper-parameters in closed
        form (e.g. ESZSL) or a calibration γ also ask for the ``val`` split while the run is in
        ``test`` mode.

        Args:
            split_mode: which split's images.
            fitted_on: whose training images the standardisation is fitted on (default:
                ``split_mode``'s own); the run's ``split_mode`` expresses the images as the
                run's model sees features.
        """
        arrays = self.arrays
        indices = self._split_indices(arrays, split_mode)
        fit_idx = None
        if self.standardise:
            fit_idx = (
                indices[0]
                if fitted_on in (None, split_mode)
                else self._split_indices(arrays, fitted_on)[0]
            )
        return build_split(arrays, indices, fit_idx, self.l2_features)

    def _split_indices(
        self, arrays: ZSLArrays, split_mode: str
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(training images, seen evaluation images, unseen evaluation images)."""
        return split_indices(arrays, split_mode, self.val_seen_fraction, self.seed)

    @property
    def feature_dim(self) -> int:
        return self.train_images.features.shape[1]

    @property
    def signature_dim(self) -> int:
        return self.signatures.shape[1]

    @property
    def train_features(self) -> Tensor:
        return self.train_images.features

    @property
    def train_labels(self) -> Tensor:
        return self.train_images.labels

    def _on_device(self, images: IndexedImages) -> IndexedImages:
        """``images`` on the trainer's device when ``features_on_device`` (GPU fast path)."""
        trainer = self.trainer
        if not self.features_on_device or trainer is None:
            return images
        return images.to(trainer.strategy.root_device)

    def train_dataloader(self) -> DataLoader:
        # Kept: the pool refresh then scores the same on-device features, with no copy.
        self.train_images = self._on_device(self.train_images)
        return index_loader(self.train_images, self.batch_size, shuffle=True, seed=self.seed)

    def _eval_loaders(self) -> list[DataLoader]:
        self.eval_images = {part: self._on_device(img) for part, img in self.eval_images.items()}
        return [
            index_loader(self.eval_images[part], self.eval_batch_size, False, seed=0)
            for part in ("unseen", "seen")
        ]

    def val_dataloader(self) -> list[DataLoader]:
        return self._eval_loaders() if self.split_mode == "val" else []

    def test_dataloader(self) -> list[DataLoader]:
        if self.split_mode != "test":
            raise DataError(
                "data.split_mode=val evaluates on validation classes only; "
                "set data.split_mode=test to evaluate on test_seen/test_unseen."
            )
        return self._eval_loaders()
