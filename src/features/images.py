"""Which images, in which order, with which labels: the two inputs of ``src.features``.

- (a) :func:`listed_images`: a standard dataset's image order, the ``image_files`` of an
  existing ``res101.mat`` (or a text file, one path per line), each path's prefix rewritten to
  the user's image root (``features.prefix=[<old>, <new>]``). The new file keeps that order
  and those labels, so the dataset's ``att_splits.mat`` applies as it is.
- (b) :func:`folder_images`: a folder of class sub-folders; classes in sorted order (label i+1
  for the i-th), images sorted by their path inside each class.

:class:`ImageFiles` reads them for a ``DataLoader``: an image that cannot be read or decoded
comes back flagged, never dropped silently (``features.bad_images``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from src.core.errors import ConfigError

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


@dataclass
class ImageList:
    """Image paths in order, their 1-based labels and the class names (label i → names[i-1]).

    ``names`` is what the features file records as ``image_files``: paths relative to
    ``root`` for a folder, the original entries for a listed dataset."""

    paths: list[Path]
    names: list[str]
    labels: np.ndarray
    classes: list[str]


def folder_images(root: Path) -> ImageList:
    """(b): every image under ``root/<class>/`` (sub-folders too), classes sorted by name."""
    if not root.is_dir():
        raise ConfigError(f"features.images={root}: no such folder (one sub-folder per class).")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise ConfigError(
            f"features.images={root}: {len(classes)} class sub-folder(s); put each class's images "
            "in a sub-folder named after the class (at least 2)."
        )
    paths, labels = [], []
    for label, name in enumerate(classes, start=1):
        files = sorted(
            p
            for p in (root / name).rglob("*")
            if p.is_file() and p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
        )
        if not files:
            raise ConfigError(f"{root / name}: no image file ({', '.join(EXTENSIONS)}).")
        paths += files
        labels += [label] * len(files)
    names = [p.relative_to(root).as_posix() for p in paths]
    return ImageList(paths, names, np.asarray(labels, dtype=np.int64), classes)


def rewrite(entry: str, prefix: list[str] | None, root: Path | None) -> Path:
    """An ``image_files`` entry → a path on this machine: ``prefix=[old, new]`` replaces a
    leading ``old``; otherwise, with a ``root``, the entry's path after its dataset folder's
    ``images/`` part (or the whole relative entry) goes under ``root``."""
    if prefix:
        old, new = prefix
        if not entry.startswith(old):
            raise ConfigError(
                f"features.prefix: image_files entry {entry!r} does not start with {old!r}."
            )
        return Path(new + entry[len(old) :])
    if root is None:
        return Path(entry)
    parts = Path(entry).parts
    tail = parts[parts.index("images") + 1 :] if "images" in parts else parts
    return root.joinpath(*[p for p in tail if p != "/"])


def listed_images(listing: Path, prefix: list[str] | None, root: Path | None) -> ImageList:
    """(a): the images of a ``res101.mat``'s ``image_files`` (with its ``labels``), or of a text
    file of ``<path> <label>`` lines, in their order."""
    if not listing.is_file():
        raise ConfigError(f"features.image_list={listing}: no such file.")
    if listing.suffix == ".mat":
        from src.data.mat_files import cell_strings, load_mat

        mat = load_mat(listing, ["image_files", "labels"])
        entries = cell_strings(mat, listing, "image_files")
        labels = np.asarray(mat["labels"]).reshape(-1).astype(np.int64)
    else:
        rows = [line.split() for line in listing.read_text().splitlines() if line.strip()]
        if any(len(r) != 2 or not r[1].isdigit() for r in rows):
            raise ConfigError(f"{listing}: every line must be '<image path> <1-based label>'.")
        entries, labels = [r[0] for r in rows], np.asarray([int(r[1]) for r in rows])
    if len(entries) != len(labels) or not len(entries):
        raise ConfigError(f"{listing}: {len(entries)} image_files against {len(labels)} labels.")
    paths = [rewrite(e, prefix, root) for e in entries]
    classes = [str(c) for c in range(1, int(labels.max()) + 1)]
    return ImageList(paths, list(entries), labels, classes)


class ImageFiles(Dataset):
    """``(index, image tensor, readable)``; an unreadable image gives zeros and ``False``."""

    def __init__(self, paths: list[Path], transform, size: tuple[int, ...]) -> None:
        self.paths, self.transform, self.size = paths, transform, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(self.paths[index]) as image:
                tensor = self.transform(image.convert("RGB"))
            return index, tensor, True
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            return index, torch.zeros(self.size), False
