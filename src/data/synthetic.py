"""The embedded default dataset: a deterministic, benchmark-shaped zero-shot task.

Classes come in groups of confusable classes: a group shares a prototype signature and its
classes differ from each other in only ``num_flips`` "fine" attribute dimensions, which also have
a weaker imprint on the image features. Random negatives rarely come from the same group, so a
model trained on them separates groups but confuses siblings; mined negatives target siblings.
Features follow one signature→feature map for every class, seen or unseen, so the task is a fair
zero-shot task. Each group contributes classes to every split (train, val, test unseen).
"""

from __future__ import annotations

import numpy as np

from src.data.arrays import ZSLArrays
from src.data.base import ZSLDataModule


def make_synthetic_arrays(
    num_groups: int = 5,
    classes_per_group: int = 12,
    unseen_per_group: int = 2,
    val_per_group: int = 2,
    coarse_dims: int = 60,
    fine_dims: int = 25,
    num_flips: int = 3,
    feature_dim: int = 256,
    images_per_class: int = 150,
    fine_gain: float = 0.4,
    instance_noise: float = 0.35,
    feature_noise: float = 0.5,
    test_seen_fraction: float = 0.2,
    seed: int = 0,
) -> ZSLArrays:
    """Generate the synthetic benchmark; the same arguments always give the same arrays."""
    rng = np.random.default_rng(seed)
    num_classes = num_groups * classes_per_group
    k = coarse_dims + fine_dims

    # Signatures: a binary prototype per group, then a few fine dimensions flipped per class.
    prototypes = rng.random((num_groups, k)) < 0.35
    binary = np.repeat(prototypes, classes_per_group, axis=0)
    for c in range(num_classes):
        flips = coarse_dims + rng.choice(fine_dims, size=num_flips, replace=False)
        binary[c, flips] ^= True
    signatures = np.clip(binary + rng.normal(0.0, 0.05, binary.shape), 0.0, 1.0)

    # One map from (instance-level) attributes to features, shared by all classes.
    gains = np.r_[np.ones(coarse_dims), np.full(fine_dims, fine_gain)]
    mixing = rng.normal(0.0, 1.0, (k, feature_dim)) * gains[:, None] / np.sqrt(k)
    offset = rng.normal(0.0, 0.3, feature_dim)
    labels = np.repeat(np.arange(num_classes), images_per_class)
    attributes = signatures[labels] + rng.normal(0.0, instance_noise, (len(labels), k))
    features = np.maximum(attributes @ mixing + offset, 0.0)  # non-negative, like CNN features
    features += rng.normal(0.0, feature_noise / np.sqrt(feature_dim), features.shape)

    # GBU-style splits: per group, unseen (test) classes, val classes, and train classes.
    role = np.tile(
        np.r_[
            np.full(unseen_per_group, 2),
            np.full(val_per_group, 1),
            np.zeros(classes_per_group - unseen_per_group - val_per_group, dtype=int),
        ],
        num_groups,
    )
    image_role = role[labels]
    seen_images = np.flatnonzero(image_role < 2)
    test_seen_mask = rng.random(len(seen_images)) < test_seen_fraction
    trainval = seen_images[~test_seen_mask]
    splits = {
        "train": trainval[image_role[trainval] == 0],
        "val": trainval[image_role[trainval] == 1],
        "trainval": trainval,
        "test_seen": seen_images[test_seen_mask],
        "test_unseen": np.flatnonzero(image_role == 2),
    }
    group = np.repeat(np.arange(num_groups), classes_per_group)
    names = [f"g{g}_c{c % classes_per_group}" for c, g in enumerate(group)]
    return ZSLArrays(
        features.astype(np.float32),
        labels,
        signatures.astype(np.float32),
        names,
        splits,
        source=f"synthetic(seed={seed})",
    )


class SyntheticDataModule(ZSLDataModule):
    """``data=synthetic``: the embedded default dataset, generated in memory from a seed.

    Args:
        generator: keyword arguments of :func:`make_synthetic_arrays` (sizes, noise, seed).
        **kwargs: split options of :class:`~src.data.base.ZSLDataModule`.
    """

    def __init__(self, generator: dict | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.generator = dict(generator or {})

    def load_arrays(self) -> ZSLArrays:
        return make_synthetic_arrays(**self.generator)
