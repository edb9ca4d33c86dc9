"""MATLAB files written byte for byte the same from the same contents.

``scipy.io.savemat`` puts the creation time into the file's 116-byte text header, so two
writes of the same arrays differ. :func:`save_mat` writes the file beside its destination,
replaces that header text with a fixed one, and moves it into place whole (a reader never sees
half a file).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

HEADER = b"MATLAB 5.0 MAT-file, written by zsl-hardneg (src.features)"
HEADER_BYTES = 116


def save_mat(path: Path, contents: dict[str, np.ndarray]) -> None:
    from scipy.io import savemat

    partial = path.with_name(path.name + ".partial")
    savemat(partial, contents, do_compression=False, oned_as="column")
    with partial.open("r+b") as f:
        f.seek(0)
        f.write(HEADER.ljust(HEADER_BYTES, b" "))
    os.replace(partial, path)
