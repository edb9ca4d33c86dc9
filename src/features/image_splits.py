"""(b) an image folder's GBU splits: ``att_splits.mat`` and the validation class lists.

Following the rules the loaders check (Xian et al., TPAMI 2018): the unseen classes
(``features.split.unseen``) give ``test_unseen_loc``; of each seen class, a seeded share of
the images (``test_seen_fraction``, at least one) is ``test_seen_loc`` and the rest
``trainval_loc``; validation split K (1, 2, 3) holds out ``val_fraction`` of the seen classes
(``valclassesK.txt``, the others in ``trainclassesK.txt``), three disjoint slices of one seeded
order of the seen classes where there are enough of them. Signatures: ``att`` (k × C) from a
file of one row per class in the folder's (sorted) class order, or the class names' text
embeddings.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from src.core.errors import ConfigError
from src.features.images import ImageList

FOLDS = (1, 2, 3)


def gbu_splits(images: ImageList, unseen: list[str], test_seen_fraction: float, seed: int) -> dict:
    """1-based ``trainval_loc``, ``test_seen_loc``, ``test_unseen_loc`` (column vectors)."""
    unknown = sorted(set(unseen) - set(images.classes))
    if unknown or not unseen:
        raise ConfigError(
            f"features.split.unseen={list(unseen)}: "
            + (f"no class folder named {unknown}; " if unknown else "empty; ")
            + f"name unseen classes among {images.classes}."
        )
    if len(set(unseen)) >= len(images.classes) - 1:
        raise ConfigError(
            f"features.split.unseen: {len(set(unseen))} of {len(images.classes)} classes; at least "
            "2 seen classes must remain (one to train on, one to validate)."
        )
    if not 0 < test_seen_fraction < 1:
        raise ConfigError(
            f"features.split.test_seen_fraction={test_seen_fraction} is invalid: "
            "it must be in (0, 1)."
        )
    rng = np.random.default_rng(seed)
    unseen_labels = {images.classes.index(c) + 1 for c in unseen}
    trainval, test_seen, test_unseen = [], [], []
    for label in range(1, len(images.classes) + 1):
        members = np.flatnonzero(images.labels == label)
        if label in unseen_labels:
            test_unseen += members.tolist()
            continue
        if members.size < 2:
            raise ConfigError(
                f"class {images.classes[label - 1]!r} has {members.size} image: a seen class needs "
                "at least 2 (training and test_seen)."
            )
        held = max(1, round(test_seen_fraction * members.size))
        chosen = np.sort(rng.permutation(members)[:held])
        test_seen += chosen.tolist()
        trainval += np.setdiff1d(members, chosen).tolist()
    return {
        "trainval_loc": np.asarray(sorted(trainval)) + 1,
        "test_seen_loc": np.asarray(sorted(test_seen)) + 1,
        "test_unseen_loc": np.asarray(sorted(test_unseen)) + 1,
    }


def validation_classes(seen: list[str], val_fraction: float, seed: int) -> dict[int, list[str]]:
    """Validation classes of splits 1–3: slices of one seeded order of the seen classes."""
    if not 0 < val_fraction < 1:
        raise ConfigError(
            f"features.split.val_fraction={val_fraction} is invalid: it must be in (0, 1)."
        )
    order = [seen[i] for i in np.random.default_rng(seed + 1).permutation(len(seen))]
    size = min(len(seen) - 1, max(1, math.floor(val_fraction * len(seen))))
    return {k: [order[(j + (k - 1) * size) % len(order)] for j in range(size)] for k in FOLDS}


def signatures_of(source: str, classes: list[str], cache_dir: str | None) -> np.ndarray:
    """C × k signatures: ``text`` (class-name embeddings) or a file of C rows (.npy, or text
    with one row of numbers per class, in the folder's sorted class order)."""
    if source == "text":
        from src.data.text_signatures import text_signatures

        return np.asarray(text_signatures(classes, cache_dir), dtype=np.float64)
    path = Path(source)
    if not path.is_file():
        raise ConfigError(
            f"features.signatures={source}: no such file; give a .npy or text file with one row "
            f"per class ({len(classes)} rows, classes in sorted order: {classes[:3]}…) or 'text'."
        )
    try:
        values = (
            np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=None, ndmin=2)
        )
    except ValueError as err:
        raise ConfigError(
            f"{path}: not a matrix of numbers ({str(err).splitlines()[0]})."
        ) from None
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != len(classes):
        raise ConfigError(
            f"{path}: shape {values.shape}; expected one row per class ({len(classes)} × k)."
        )
    if not np.isfinite(values).all():
        raise ConfigError(
            f"{path}: {int((~np.isfinite(values)).sum())} values are NaN or infinite."
        )
    return values


def write_splits(
    folder: Path,
    images: ImageList,
    signatures: np.ndarray,
    split: dict,
    val: dict[int, list[str]],
    extra: dict,
) -> None:
    """``att_splits.mat`` and ``{train,val}classesK.txt`` in ``folder``."""
    from src.features.matfile import save_mat

    contents = {
        "allclasses_names": np.array([[name] for name in images.classes], dtype=object),
        "att": signatures.T,
        **{key: value.reshape(-1, 1).astype(np.float64) for key, value in split.items()},
        **extra,
    }
    save_mat(folder / "att_splits.mat", contents)
    unseen_labels = set(images.labels[split["test_unseen_loc"] - 1].tolist())
    seen = [c for i, c in enumerate(images.classes, start=1) if i not in unseen_labels]
    for k, names in val.items():
        (folder / f"valclasses{k}.txt").write_text("".join(f"{n}\n" for n in names))
        rest = [c for c in seen if c not in names]
        (folder / f"trainclasses{k}.txt").write_text("".join(f"{n}\n" for n in rest))
    (folder / "testclasses.txt").write_text(
        "".join(f"{c}\n" for i, c in enumerate(images.classes, start=1) if i in unseen_labels)
    )
