"""Reading the benchmark files: MAT files, 1-based index vectors and class-name lists.

Every failure is a one-line :class:`~src.data.arrays.DataError` that names the file, the key or
line at fault, and what to do about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io

from src.data.arrays import DataError

SOURCES = (
    "the official files are the xlsa17 release of Xian et al. 'Zero-Shot Learning - The Good, "
    "the Bad and the Ugly' (https://www.mpi-inf.mpg.de/departments/computer-vision-and-machine-"
    "learning/research/zero-shot-learning/zero-shot-learning-the-good-the-bad-and-the-ugly) and "
    "the aPascal/aYahoo annotations from https://vision.cs.uiuc.edu/attributes/"
)
GET_DATA = "set ZSL_DATA_DIR (in .env) to the folder holding AWA1/ AWA2/ CUB/ SUN/ APY/; " + SOURCES


def dataset_folder(data_dir: str | Path | None, name: str) -> Path:
    """``data_dir/name``, after checking that the data root is set and exists."""
    if data_dir in (None, ""):
        raise DataError(f"data.data_dir is not set (ZSL_DATA_DIR is empty); {GET_DATA}.")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(f"data.data_dir={root} is not a folder; {GET_DATA}.")
    return root / name


def require_file(path: Path) -> Path:
    """Return ``path`` if it is a file; otherwise say where the benchmark files come from."""
    if not path.is_file():  # the data root exists (dataset_folder checked it): a file is missing
        raise DataError(
            f"{path}: file not found; put this file of the release into {path.parent} (or "
            f"point ZSL_DATA_DIR at another folder holding {path.parent.name}/); {SOURCES}."
        )
    return path


def load_mat(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Load a MAT file (v4 to v7.2) and check that it holds ``keys``."""
    require_file(path)
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as err:  # scipy raises several exception types for non-MAT bytes
        raise DataError(
            f"{path}: not a MAT file scipy can read ({type(err).__name__}: "
            f"{' '.join(str(err).split())}); "
            "replace it with the original file of the release."
        ) from err
    found = sorted(k for k in mat if not k.startswith("__"))
    for key in keys:
        if key not in mat:
            raise DataError(
                f"{path}: key '{key}' is missing (keys found: {', '.join(found) or 'none'}); "
                "replace it with the original file of the release."
            )
    return mat


def one_based_indices(
    values: np.ndarray, path: Path, key: str, upper: int, what: str
) -> np.ndarray:
    """Convert a vector of 1-based indices in ``[1, upper]`` to 0-based ``int64``.

    Args:
        values: the raw vector (any shape with one non-singleton axis, any numeric dtype).
        path: the file it came from, named in errors.
        key: its key in that file, named in errors.
        upper: the largest valid 1-based value.
        what: what ``upper`` counts (e.g. "images in res101.mat"), named in errors.
    """
    flat = np.asarray(values).reshape(-1)
    if flat.size == 0:
        raise DataError(f"{path}: key '{key}' is empty; it must list at least one image.")
    if not np.issubdtype(flat.dtype, np.number) or not np.all(np.isfinite(flat)):
        raise DataError(f"{path}: key '{key}' must hold finite numbers, found {flat.dtype} values.")
    # Cast before subtracting: the release stores locs as uint16, where 0 - 1 wraps around.
    as_int = flat.astype(np.int64)
    if not np.array_equal(as_int, flat):
        raise DataError(f"{path}: key '{key}' must hold whole numbers (1-based indices).")
    bad = as_int[(as_int < 1) | (as_int > upper)]
    if bad.size:
        raise DataError(
            f"{path}: key '{key}' holds {bad.size} values outside [1, {upper}] (e.g. {bad[0]}); "
            f"there are {upper} {what}, so this file does not match the others."
        )
    return as_int - 1


def cell_strings(mat: dict[str, np.ndarray], path: Path, key: str) -> list[str]:
    """The strings of a MATLAB cell array of strings (e.g. ``allclasses_names``)."""
    try:
        return [str(np.asarray(cell).reshape(-1)[0]).strip() for cell in mat[key].reshape(-1)]
    except (IndexError, TypeError, ValueError) as err:
        raise DataError(f"{path}: key '{key}' must be a cell array of strings ({err}).") from err


def class_indices(path: Path, class_names: Sequence[str]) -> np.ndarray:
    """Indices into ``class_names`` of the names listed in ``path`` (one per line)."""
    index = {name: i for i, name in enumerate(class_names)}
    found = []
    for number, line in enumerate(require_file(path).read_text().splitlines(), start=1):
        name = line.strip()
        if not name:
            continue
        if name not in index:
            raise DataError(
                f"{path}, line {number}: class '{name}' is not among the {len(class_names)} "
                "allclasses_names of att_splits.mat; the class lists must come from the same "
                "release as att_splits.mat."
            )
        found.append(index[name])
    return np.asarray(found, dtype=np.int64)


def check_class_columns(mat: dict[str, np.ndarray], path: Path, key: str, num_names: int) -> None:
    """The signatures ``key`` (k × C) have one column per class name of ``allclasses_names``."""
    values = np.asarray(mat[key])
    if values.ndim == 2 and values.shape[1] != num_names:
        raise DataError(
            f"{path}: '{key}' has {values.shape[1]} class columns (shape {values.shape}) but "
            f"'allclasses_names' lists {num_names} classes; they must describe the same "
            "classes: replace it with the original file of the release."
        )
