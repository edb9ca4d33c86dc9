"""Shared fixtures: the real benchmark files, and a tiny dataset in the xlsa17 format."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from src.core.env import load_env
from src.data.xlsa17 import Xlsa17DataModule

load_env()  # .env, where a developer sets ZSL_DATA_DIR


@pytest.fixture
def real_data() -> Callable[..., Path]:
    """``real_data(*relative_paths)`` → the data root ``ZSL_DATA_DIR`` holding those files.

    Skips the test when the variable is unset or a file is absent; under CI (``CI`` set) it
    fails instead, because CI is given the data and a skip there would hide a broken set-up.
    """

    def require(*relative_paths: str) -> Path:
        root = os.environ.get("ZSL_DATA_DIR")
        missing = [p for p in relative_paths if not root or not (Path(root) / p).is_file()]
        if not missing:
            return Path(root)
        reason = (
            "ZSL_DATA_DIR is not set"
            if not root
            else f"missing under ZSL_DATA_DIR={root}: {missing}"
        )
        if os.environ.get("CI"):
            pytest.fail(f"real data needed under CI: {reason}")
        pytest.skip(reason)

    return require


TOY_NAMES = ["c0", "c1", "c2", "c3", "c4", "c5"]


@dataclass
class ToyDataset:
    """A 60-image, 6-class dataset ``TOY`` in the xlsa17 layout, editable before writing.

    Classes c0–c2 are train, c3 val (so c0–c3 are seen) and c4–c5 unseen; 10 images each.
    Edit ``att_splits``, ``res101`` or ``class_lists``, then :meth:`write` and :meth:`module`.
    """

    root: Path
    att_splits: dict = field(default_factory=dict)
    res101: dict = field(default_factory=dict)
    class_lists: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(0)
        labels = np.repeat(np.arange(6), 10)
        seen = np.flatnonzero(labels < 4)
        trainval, test_seen = seen[::2], seen[1::2]
        attributes = rng.random((3, 6))  # k × C, as in the release
        self.att_splits = {
            "allclasses_names": np.array([[name] for name in TOY_NAMES], dtype=object),
            "att": attributes,
            "original_att": 100 * attributes,
            "trainval_loc": (trainval + 1)[:, None].astype(np.uint16),
            "test_seen_loc": (test_seen + 1)[:, None].astype(np.uint16),
            "test_unseen_loc": (np.flatnonzero(labels >= 4) + 1)[:, None].astype(np.uint16),
        }
        features = labels[None, :] + rng.normal(0.0, 0.1, (5, 60))  # d × N, as in the release
        self.res101 = {"features": features.astype(np.float32), "labels": (labels + 1)[:, None]}
        self.class_lists = {
            "trainclasses1.txt": ["c0", "c1", "c2"],
            "valclasses1.txt": ["c3"],
            "trainvalclasses.txt": ["c0", "c1", "c2", "c3"],
            "testclasses.txt": ["c4", "c5"],
        }

    @property
    def folder(self) -> Path:
        return self.root / "TOY"

    def write(self) -> Path:
        """Write the files under ``root/TOY``; return ``root`` (the data_dir)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        scipy.io.savemat(self.folder / "att_splits.mat", self.att_splits)
        scipy.io.savemat(self.folder / "res101.mat", self.res101)
        for name, lines in self.class_lists.items():
            (self.folder / name).write_text("".join(f"{line}\n" for line in lines))
        return self.root

    def module(self, **kwargs) -> Xlsa17DataModule:
        """A data module on the written files (no cache unless ``cache_dir`` is given)."""
        return Xlsa17DataModule(**{"dataset": "TOY", "data_dir": str(self.root), **kwargs})


@pytest.fixture
def toy(tmp_path: Path) -> ToyDataset:
    return ToyDataset(tmp_path / "data")
