"""A *simulated* per-image-attribute dataset in the xlsa17 format, from SUN class attributes.

Used to check that defaults chosen on APY also hold on many classes (645 seen / 72 unseen), where
no per-image attribute file is shipped. Each image's 102 binary attributes are drawn
independently with p = the image's class value in SUN's ``original_att`` (the share of annotator
votes), 20 images per class (16 trainval + 4 test_seen for seen classes; 20 test_unseen for
unseen ones), using SUN's own class lists. It is a simulation, not a benchmark: label anything
measured on it "simulated SUN per-image attributes".

    python scripts/simulate_sun_attributes.py $ZSL_DATA_DIR/SUN /tmp/sim/SUN
    python -m src.protocol data=sun data.data_dir=/tmp/sim data.feature_file=binary_attributes.mat
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import scipy.io


def simulate(source: Path, target: Path, images_per_class: int = 20, seed: int = 0) -> None:
    mat = scipy.io.loadmat(source / "att_splits.mat")
    names = [str(n[0][0]) for n in mat["allclasses_names"]]
    unseen = set((source / "testclasses.txt").read_text().split())
    rng = np.random.default_rng(seed)
    labels, features = [], []
    locs: dict[str, list[int]] = {"trainval_loc": [], "test_seen_loc": [], "test_unseen_loc": []}
    held_out = images_per_class // 5
    for c, name in enumerate(names):
        p = mat["original_att"][:, c]
        for i in range(images_per_class):
            labels.append(c + 1)
            features.append((rng.random(len(p)) < p).astype(np.float32))
            part = "test_unseen" if name in unseen else "test_seen" if i < held_out else "trainval"
            locs[f"{part}_loc"].append(len(labels))  # 1-based
    target.mkdir(parents=True, exist_ok=True)
    keep = {k: mat[k] for k in ("allclasses_names", "att", "original_att")}
    scipy.io.savemat(
        target / "att_splits.mat", {**keep, **{k: np.array(v)[:, None] for k, v in locs.items()}}
    )
    scipy.io.savemat(
        target / "binary_attributes.mat",
        {"features": np.array(features).T, "labels": np.array(labels)[:, None]},
    )
    for path in source.glob("*classes*.txt"):
        shutil.copy(path, target / path.name)


if __name__ == "__main__":
    simulate(Path(sys.argv[1]), Path(sys.argv[2]))
