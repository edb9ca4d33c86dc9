"""The embedded default dataset: a deterministic, benchmark-shaped zero-shot task.

Classes come in groups of confusable classes: a group shares a prototype signature and its
classes differ from each other in only ``num_flips`` "fine" attribute dimensions, which also have
a weaker imprint on the image features. Random negatives rarely come from the same group, so a
model trained on them separates groups but confuses siblings; mined negatives target siblings.
Features follow one signature→feature map for every class, seen or unseen, so the task is a fair
zero-shot task. Each group contributes classes to every split (train, val, test unseen).

``data.like=apy|awa1|awa2|cub|sun`` generates the same kind of task at a benchmark's scale
(:func:`make_benchmark_arrays`): its classes, seen/unseen and validation class counts, split
sizes and signature dimension (xlsa17's proposed splits), with 2,048-d features like the
release's ResNet-101 ones, and the three validation folds. It times a protocol and shows its
memory before real data or a cluster is at hand; its accuracies mean nothing.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from typing import ClassVar

import numpy as np

from src.data.arrays import ZSLArrays
from src.data.datamodule import ZSLDataModule


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


#: xlsa17's proposed splits (Xian et al.): seen (trainval) and unseen (test) classes, the
#: validation classes of each fold (valclassesK.txt), images per split, signature dimension k
BENCHMARK_KEYS = ("seen", "unseen", "val", "trainval", "test_seen", "test_unseen", "k")
BENCHMARKS = {
    name: dict(zip(BENCHMARK_KEYS, sizes, strict=True))
    for name, sizes in {
        "apy": (20, 12, 5, 5932, 1483, 7924, 64),
        "awa1": (40, 10, 13, 19832, 4958, 5685, 85),
        "awa2": (40, 10, 13, 23527, 5882, 7913, 85),
        "cub": (150, 50, 50, 7057, 1764, 2967, 312),
        "sun": (645, 72, 65, 10320, 2580, 1440, 102),
    }.items()
}
#: feature dimension of the release's ResNet-101 features
BENCHMARK_FEATURE_DIM = 2048


def make_benchmark_arrays(
    like: str,
    val_split: int = 1,
    seed: int = 0,
    feature_dim: int = BENCHMARK_FEATURE_DIM,
    classes_per_group: int = 5,
    fine_share: float = 0.3,
    num_flips: int = 3,
    fine_gain: float = 0.4,
    instance_noise: float = 0.35,
    feature_noise: float = 0.5,
) -> ZSLArrays:
    """A task shaped like benchmark ``like`` (:data:`BENCHMARKS`), generated like
    :func:`make_synthetic_arrays`: groups of ``classes_per_group`` confusable classes (the last
    ``fine_share`` of the k attributes tell siblings apart). The classes, images and splits are
    fixed by ``seed``; ``val_split`` (1, 2, 3) draws that fold's validation classes among the
    seen ones. The same arguments always give the same arrays."""
    if like not in BENCHMARKS:
        raise ValueError(f"data.like={like!r} is invalid: use one of {sorted(BENCHMARKS)} or null.")
    if val_split not in (1, 2, 3):
        raise ValueError(f"data.val_split={val_split!r} is invalid: use 1, 2 or 3.")
    b = BENCHMARKS[like]
    features, labels, signatures, seen, test_seen, trainval = _benchmark_images(
        like, seed, feature_dim, classes_per_group, fine_share, num_flips, fine_gain,
        instance_noise, feature_noise,
    )  # fmt: skip
    fold_rng = np.random.default_rng([seed, val_split])  # the fold's validation classes
    val_classes = fold_rng.choice(seen, size=b["val"], replace=False)
    is_val = np.isin(labels[trainval], val_classes)
    splits = {
        "train": trainval[~is_val],
        "val": trainval[is_val],
        "trainval": trainval,
        "test_seen": test_seen,
        "test_unseen": np.arange(b["trainval"] + b["test_seen"], len(labels)),
    }
    names = [
        f"{like}_g{c // classes_per_group}_c{c % classes_per_group}" for c in range(len(signatures))
    ]
    return ZSLArrays(
        features,
        labels,
        signatures,
        names,
        splits,
        source=f"synthetic(like={like}, seed={seed}, fold {val_split})",
    )


@functools.lru_cache(maxsize=1)
def _benchmark_images(
    like: str,
    seed: int,
    feature_dim: int,
    classes_per_group: int,
    fine_share: float,
    num_flips: int,
    fine_gain: float,
    instance_noise: float,
    feature_noise: float,
) -> tuple[np.ndarray, ...]:
    """(features, labels, signatures, seen classes, test-seen images, trainval images) of
    :func:`make_benchmark_arrays`, generated once per process: every fold and preprocessing
    shares them (nothing writes to them; the datamodules build their own tensors)."""
    b = BENCHMARKS[like]
    rng = np.random.default_rng(seed)
    num_classes, k = b["seen"] + b["unseen"], b["k"]
    fine_dims = max(num_flips, round(fine_share * k))
    coarse_dims = k - fine_dims
    group = np.arange(num_classes) // classes_per_group
    prototypes = rng.random((group[-1] + 1, k)) < 0.35
    binary = prototypes[group].copy()
    for c in range(num_classes):
        binary[c, coarse_dims + rng.choice(fine_dims, size=num_flips, replace=False)] ^= True
    signatures = np.clip(binary + rng.normal(0.0, 0.05, binary.shape), 0.0, 1.0)
    unseen = np.sort(rng.permutation(num_classes)[: b["unseen"]])  # spread over the groups
    seen = np.setdiff1d(np.arange(num_classes), unseen)

    # images: the seen ones spread evenly over the seen classes, likewise the unseen ones
    def spread(classes: np.ndarray, total: int) -> np.ndarray:
        return np.repeat(
            classes, [len(part) for part in np.array_split(np.arange(total), len(classes))]
        )

    seen_labels = spread(seen, b["trainval"] + b["test_seen"])
    labels = np.r_[seen_labels, spread(unseen, b["test_unseen"])]
    gains = np.r_[np.ones(coarse_dims), np.full(fine_dims, fine_gain)]
    mixing = rng.normal(0.0, 1.0, (k, feature_dim)) * gains[:, None] / np.sqrt(k)
    offset = rng.normal(0.0, 0.3, feature_dim)
    attributes = signatures[labels] + rng.normal(0.0, instance_noise, (len(labels), k))
    features = np.maximum(attributes @ mixing + offset, 0.0).astype(np.float32)
    noise = rng.standard_normal(features.shape, dtype=np.float32)
    features += np.float32(feature_noise / np.sqrt(feature_dim)) * noise
    del noise

    seen_images = np.arange(len(seen_labels))
    test_seen = np.sort(rng.choice(seen_images, size=b["test_seen"], replace=False))
    trainval = np.setdiff1d(seen_images, test_seen)
    return features, labels, signatures.astype(np.float32), seen, test_seen, trainval


#: ``data.generator`` keys that count something, and their least value
GENERATOR_COUNTS = {
    "num_groups": 1,
    "classes_per_group": 3,
    "unseen_per_group": 1,
    "val_per_group": 1,
    "coarse_dims": 1,
    "fine_dims": 0,
    "num_flips": 0,
    "feature_dim": 1,
    "images_per_class": 2,
    "seed": 0,
}


def check_generator(generator: dict) -> None:
    """``data.generator``: the arguments of :func:`make_synthetic_arrays`, each of its type and
    in its range; a :class:`~src.core.errors.ConfigError` naming the first key that is not."""
    from src.core.errors import ConfigError

    parameters = inspect.signature(make_synthetic_arrays).parameters
    values = {name: p.default for name, p in parameters.items()}
    for key, value in generator.items():
        if key not in parameters:
            raise ConfigError(
                f"data.generator.{key} is not an argument of make_synthetic_arrays; its "
                f"arguments are: {', '.join(parameters)}."
            )
        values[key] = value

    def refuse(key: str, allowed: str) -> None:
        raise ConfigError(f"data.generator.{key}={values[key]!r} is invalid: it must be {allowed}.")

    for key, low in GENERATOR_COUNTS.items():
        value = values[key]
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
            refuse(key, f"an integer ≥ {low}")
    for key in ("fine_gain", "instance_noise", "feature_noise", "test_seen_fraction"):
        value = values[key]
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            refuse(key, "a number")
        if not math.isfinite(value) or (key != "fine_gain" and value < 0):
            refuse(key, "a finite number" + ("" if key == "fine_gain" else " ≥ 0"))
    if values["seed"] >= 2**32:
        refuse("seed", "an integer in [0, 2³² − 1]")
    if not 0 < values["test_seen_fraction"] < 1:
        refuse("test_seen_fraction", "a number in (0, 1), the share of seen images tested")
    if values["num_flips"] > values["fine_dims"]:
        refuse("num_flips", f"at most data.generator.fine_dims={values['fine_dims']}")
    held_out = values["unseen_per_group"] + values["val_per_group"]
    if held_out >= values["classes_per_group"]:
        raise ConfigError(
            f"data.generator.unseen_per_group + val_per_group = {held_out} leaves no training "
            f"class in a group of classes_per_group={values['classes_per_group']}: make "
            "classes_per_group larger than their sum."
        )


class SyntheticDataModule(ZSLDataModule):
    """``data=synthetic``: the embedded default dataset, generated in memory from a seed; with
    ``like``, a task at a benchmark's scale (:func:`make_benchmark_arrays`).

    Args:
        generator: keyword arguments of :func:`make_synthetic_arrays` (sizes, noise, seed).
        like: ``apy``, ``awa1``, ``awa2``, ``cub`` or ``sun``: that benchmark's shape instead
            (seeded by ``generator.seed``; the other generator arguments do not apply).
        val_split: with ``like``, the validation fold (1, 2, 3).
        **kwargs: split options of :class:`~src.data.datamodule.ZSLDataModule`.
    """

    #: ``data.generator`` holds keyword arguments of this function (the config checks read
    #: its signature: src/cli/config_checks.py)
    nested_arguments: ClassVar[dict[str, str]] = {
        "generator": "src.data.synthetic.make_synthetic_arrays"
    }

    def __init__(
        self, generator: dict | None = None, like: str | None = None, val_split: int = 1, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self.generator = dict(generator or {})
        check_generator(self.generator)
        if like is not None and like not in BENCHMARKS:
            raise ValueError(
                f"data.like={like!r} is invalid: use one of {sorted(BENCHMARKS)} or null."
            )
        self.like, self.val_split = like, val_split

    def load_arrays(self) -> ZSLArrays:
        if self.like is not None:
            seed = int(self.generator.get("seed", 0))
            return make_benchmark_arrays(self.like, self.val_split, seed)
        return make_synthetic_arrays(**self.generator)
