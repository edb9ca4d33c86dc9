"""``python -m src.features`` (``zsl-features``): images in, a features file out.

It turns images into the xlsa17 ``res101.mat`` format (``features`` d × N, ``labels`` N × 1,
1-based, ``image_files``) that ``data=<dataset>`` (or ``data=images data.dataset=<name>``)
reads unchanged, from a standard dataset's image order or from a folder of class sub-folders
(which also gets its ``att_splits.mat``), with a torchvision, timm or open_clip backbone:

- :mod:`src.features.backbones`: the backbone, its weights and its own preprocessing;
- :mod:`src.features.images`: which images, in which order, and reading them;
- :mod:`src.features.image_splits`: an image folder's GBU splits and signatures;
- :mod:`src.features.extract`: batched, chunked and resumable extraction, the file written.

Importing this package imports no torch (the console script answers ``--help`` at once).
"""

from __future__ import annotations

from typing import Any


def run(cfg: Any) -> Any:
    """The job of ``python -m src.features``."""
    from src.features.extract import run as extract

    return extract(cfg)
