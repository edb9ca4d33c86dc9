"""The arrays every dataset provides, and their consistency checks."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field

import numpy as np

SPLIT_NAMES = ("train", "val", "trainval", "test_seen", "test_unseen")

log = logging.getLogger(__name__)


class DataError(ValueError):
    """A dataset's files or arrays are inconsistent; the message names what and where."""


def _digest(*values: bytes | np.ndarray) -> str:
    """12 hex digits of the SHA-256 of ``values`` (arrays with their dtype and shape)."""
    digest = hashlib.sha256()
    for value in values:
        if isinstance(value, np.ndarray):
            digest.update(f"{value.dtype.str}{value.shape}".encode())
            value = np.ascontiguousarray(value)
        digest.update(value)
    return digest.hexdigest()[:12]


def array_digest(array: np.ndarray) -> str:
    """The content hash of one array, as :meth:`ZSLArrays.fingerprint` computes it."""
    return _digest(np.asarray(array))


def check_unique_names(names: list[str], where: str) -> None:
    """Class names name one class each: a repeated name would merge two classes wherever
    classes are looked up by name (the split lists), and one of them would leave training."""
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in seen:
            raise DataError(
                f"{where}: class name '{name}' is listed twice (classes {seen[name]} and {i}, "
                "0-based); every class needs its own name: fix the class list."
            )
        seen[name] = i


@dataclass
class ZSLArrays:
    """A zero-shot dataset in memory, before any split logic.

    Attributes:
        features: image features, N × d, float.
        labels: class index of each image, N, int in ``[0, C)``.
        signatures: class signatures, C × k, float.
        class_names: the C class names.
        splits: image indices (0-based) of the GBU splits: ``trainval``, ``test_seen``,
            ``test_unseen`` and, for validation mode, ``train`` and ``val``.
        source: where the arrays came from, named in error messages and logs.
    """

    features: np.ndarray
    labels: np.ndarray
    signatures: np.ndarray
    class_names: list[str]
    splits: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = "arrays"
    #: content hashes already known for some parts (``{"features": …}``, from the disk cache,
    #: computed when the entry was built); the others are computed by :meth:`fingerprint`
    known_digests: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.features = np.asarray(self.features)
        self.labels = np.asarray(self.labels).reshape(-1).astype(np.int64)
        self.signatures = np.asarray(self.signatures, dtype=np.float32)
        self.splits = {
            k: np.asarray(v).reshape(-1).astype(np.int64) for k, v in self.splits.items()
        }
        self.check()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fingerprint(self) -> dict[str, str]:
        """A hash of each part of the dataset's content, ``{"classes", "features", "labels",
        "signatures", "splits"}`` (12 hex digits of a SHA-256 of the values, their dtype and
        shape; ``splits`` of every split's indices), computed once per arrays object."""
        if getattr(self, "_fingerprint", None) is None:
            parts = {
                "classes": _digest(json.dumps(list(self.class_names)).encode()),
                "features": self.known_digests.get("features") or _digest(self.features),
                "labels": _digest(self.labels),
                "signatures": _digest(self.signatures),
                "splits": _digest(
                    *(x for k in sorted(self.splits) for x in (k.encode(), self.splits[k]))
                ),
            }
            self._fingerprint = parts
        return dict(self._fingerprint)

    def check(self) -> None:
        """Raise :class:`DataError` naming the first inconsistency found."""
        src, n = self.source, len(self.features)
        if self.features.ndim != 2:
            raise DataError(
                f"{src}: features must be a 2-D array, got shape {self.features.shape}."
            )
        if len(self.labels) != n:
            raise DataError(
                f"{src}: {n} feature rows but {len(self.labels)} labels; "
                "features and labels must describe the same images."
            )
        bad = int((~np.isfinite(self.features)).sum())
        if bad:
            raise DataError(
                f"{src}: features hold {bad} NaN or infinite values; "
                "re-extract or clean the features before training."
            )
        if self.signatures.shape[0] != self.num_classes:
            raise DataError(
                f"{src}: {self.signatures.shape[0]} signatures but {self.num_classes} class names; "
                "they must have one row per class."
            )
        check_unique_names(list(self.class_names), f"{src}: class_names")
        if not np.isfinite(self.signatures).all():
            raise DataError(f"{src}: signatures hold NaN or infinite values.")
        self._check_signatures_tell_classes_apart()
        if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
            raise DataError(
                f"{src}: labels must lie in [0, {self.num_classes}) after conversion, found "
                f"[{self.labels.min()}, {self.labels.max()}]."
            )
        for name, idx in self.splits.items():
            if name not in SPLIT_NAMES:
                raise DataError(f"{src}: unknown split '{name}'; expected one of {SPLIT_NAMES}.")
            if len(idx) == 0:
                raise DataError(f"{src}: split '{name}' is empty.")
            if idx.min() < 0 or idx.max() >= n:
                raise DataError(
                    f"{src}: split '{name}' indexes images outside [0, {n}) "
                    f"(found [{idx.min()}, {idx.max()}])."
                )
        self._check_no_duplicates()
        for test in ("test_seen", "test_unseen"):
            self._check_images_disjoint("trainval", test)
        self._check_disjoint("trainval", "test_unseen")
        self._check_disjoint("train", "val")
        self._check_every_class_has_images()

    def _check_signatures_tell_classes_apart(self) -> None:
        """An all-zero signature is refused: the class scores 0 against every image under any
        compatibility (and has no direction under cosine), so it is never recognised, or wins
        every tie (a ZSL accuracy of 1.0 that means nothing). Identical signatures can be
        legitimate (coarse binary attributes) but no signature-based model can tell those
        classes apart: each group is named in one warning."""
        zero = np.flatnonzero(~(self.signatures != 0).any(axis=1))
        if zero.size:
            raise DataError(
                f"{self.source}: {zero.size} class signature(s) are all zeros "
                f"({self.quoted_classes(zero)}); such a class scores 0 against every image, "
                "so it is never told apart from the others: give it a signature (a missing "
                "attribute row?), or leave the class out."
            )
        _, inverse, counts = np.unique(
            self.signatures, axis=0, return_inverse=True, return_counts=True
        )
        groups = sorted(
            (np.flatnonzero(inverse.reshape(-1) == g) for g in np.flatnonzero(counts > 1)),
            key=lambda group: group[0],
        )
        if groups:
            shown = "; ".join(
                " = ".join(f"'{self.class_names[c]}'" for c in group) for group in groups[:3]
            )
            log.warning(
                "%s: %d group(s) of classes share one signature (%s%s): no signature-based model "
                "can tell them apart, so their images are assigned among them by tie-breaking; "
                "give them distinct signatures if that is not intended.",
                self.source,
                len(groups),
                shown,
                "; …" if len(groups) > 3 else "",
            )

    def _check_no_duplicates(self) -> None:
        """An image listed twice in a split would count twice in training or evaluation."""
        for name, idx in self.splits.items():
            values, counts = np.unique(idx, return_counts=True)
            repeated = counts > 1
            if repeated.any():
                extra = int((counts[repeated] - 1).sum())
                raise DataError(
                    f"{self.source}: split '{name}' holds {extra} duplicate indices "
                    f"({len(idx)} entries, {len(values)} distinct images; e.g. image "
                    f"{values[repeated][0]}, 0-based); each image must appear once per split."
                )

    def _check_images_disjoint(self, train: str, test: str) -> None:
        """No test image may be a training image (a leak that class checks can miss)."""
        if train not in self.splits or test not in self.splits:
            return
        shared = np.intersect1d(self.splits[train], self.splits[test])
        if shared.size:
            raise DataError(
                f"{self.source}: splits '{train}' and '{test}' share {shared.size} images "
                f"(e.g. image {shared[0]}, 0-based); a test image must never be a training image."
            )

    def _check_every_class_has_images(self) -> None:
        """Every class is seen (trainval images) or unseen (test_unseen images).

        A class with neither would silently drop out of the evaluation's candidate classes.
        """
        if "trainval" not in self.splits or "test_unseen" not in self.splits:
            return
        covered = np.union1d(
            self.labels[self.splits["trainval"]], self.labels[self.splits["test_unseen"]]
        )
        missing = np.setdiff1d(np.arange(self.num_classes), covered)
        if missing.size:
            names = ", ".join(self.class_names[c] for c in missing[:5])
            raise DataError(
                f"{self.source}: split 'test_unseen' has no image of {missing.size} classes that "
                f"'trainval' does not hold either ({names}); every class must have images in one "
                "of them, or it drops out of the candidates."
            )

    def quoted_classes(self, classes: np.ndarray, most: int = 5) -> str:
        """The names of ``classes`` (indices) in a message: ``'a', 'b', …`` (at most ``most``)."""
        names = ", ".join(f"'{self.class_names[c]}'" for c in classes[:most])
        return names + (", …" if len(classes) > most else "")

    def _check_disjoint(self, seen: str, unseen: str) -> None:
        if seen not in self.splits or unseen not in self.splits:
            return
        overlap = np.intersect1d(self.labels[self.splits[seen]], self.labels[self.splits[unseen]])
        if overlap.size:
            names = ", ".join(self.class_names[c] for c in overlap[:5])
            raise DataError(
                f"{self.source}: splits '{seen}' and '{unseen}' share {overlap.size} classes "
                f"({names}); seen and unseen classes must be disjoint."
            )
