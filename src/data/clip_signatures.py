"""``signatures: clip``: class signatures from the text tower of an open_clip model.

Each class name, normalised as for ``text`` signatures (:func:`normalise_class_name`), fills
every prompt template (``data.clip.templates``, e.g. ``"a photo of a {}."``); the prompts'
text embeddings are L2-normalised, averaged and normalised again: CLIP's own zero-shot
classifier weights (Radford et al., 2021). With image features of the same model's image tower
(``python -m src.features features.backbone=open_clip:<arch>``), the nearest-signature
reference is then CLIP's zero-shot classifier. Weights (``data.clip.weights``): a local file
of the whole CLIP model's state dict, or ``download`` (open_clip's download of the tag
``data.clip.pretrained``). Embeddings are cached on disk, keyed by the model, the weights'
SHA-256, the templates and the names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from src.data.cache import cached_arrays
from src.data.text_signatures import normalise_class_name

DEFAULT_TEMPLATES = ("a photo of a {}.",)


def clip_signatures(
    class_names: Sequence[str], cache_dir: str | Path | None, options: Mapping | None
) -> np.ndarray:
    """C × e text embeddings (float32, unit norm) of the classes, one row per class."""
    from src.core.errors import ConfigError
    from src.pretrained.weights import DOWNLOAD, sha256

    options = dict(options or {})
    model = str(options.get("model") or "ViT-B-32")
    weights = options.get("weights") or DOWNLOAD
    pretrained = options.get("pretrained")
    templates = [str(t) for t in (options.get("templates") or DEFAULT_TEMPLATES)]
    if not all("{}" in t for t in templates):
        raise ConfigError(
            f"data.clip.templates={templates}: every template needs a '{{}}' for the class name."
        )
    if weights != DOWNLOAD and not Path(weights).is_file():
        raise ConfigError(
            f"data.clip.weights={weights}: no such file; give the open_clip {model} model's "
            "state dict (torch.save(model.state_dict(), path)) or data.clip.weights=download."
        )
    texts = [normalise_class_name(n) for n in class_names]
    identity = {
        "model": model,
        "weights": f"download:{pretrained}" if weights == DOWNLOAD else sha256(Path(weights)),
        "templates": templates,
        "texts": texts,
    }
    arrays = cached_arrays(
        cache_dir,
        "clip_signatures",
        sources=[],
        options=identity,
        build=lambda: {"signatures": _embed(texts, model, weights, pretrained, templates)},
    )
    return arrays["signatures"]


def _embed(texts, model: str, weights: str, pretrained, templates: list[str]) -> np.ndarray:
    import torch

    from src.core.errors import ConfigError
    from src.pretrained.compat import import_torchvision
    from src.pretrained.weights import DOWNLOAD, load_into

    import_torchvision()  # open_clip imports it; one line if the features extra is missing
    import open_clip

    if model not in open_clip.list_models():
        raise ConfigError(f"data.clip.model={model}: open_clip has no model {model!r}.")
    if weights == DOWNLOAD and not pretrained:
        raise ConfigError(f"data.clip.pretrained is needed to download open_clip:{model}.")
    clip = open_clip.create_model(model, pretrained=pretrained if weights == DOWNLOAD else None)
    if weights != DOWNLOAD:
        load_into(clip, Path(weights), f"open_clip:{model}")
    clip.eval()
    tokenizer = open_clip.get_tokenizer(model)
    rows = []
    with torch.inference_mode():
        for text in texts:
            prompts = clip.encode_text(tokenizer([t.format(text) for t in templates])).float()
            prompts = prompts / prompts.norm(dim=-1, keepdim=True)
            mean = prompts.mean(dim=0)
            rows.append((mean / mean.norm()).numpy())
    return np.stack(rows).astype(np.float32)


def shares_space(feature_path: Path, options: Mapping | None) -> bool:
    """Whether the image features in ``feature_path`` (a ``src.features`` file) come from the
    image tower of the CLIP model whose text tower makes the signatures: the same open_clip
    architecture and the same weights (the file's SHA-256, or the same downloaded tag). Then
    features and signatures live in one space, and the nearest signature is CLIP's zero-shot
    classifier."""
    from scipy.io import loadmat

    from src.pretrained.weights import DOWNLOAD, sha256

    options = dict(options or {})
    keys = ["backbone", "weights", "weights_sha256", "pretrained"]
    try:
        found = loadmat(feature_path, variable_names=keys)
    except (OSError, ValueError):
        return False
    text = {
        k: str(np.asarray(found[k]).reshape(-1)[0]) if k in found and found[k].size else ""
        for k in keys
    }
    if text["backbone"] != f"open_clip:{options.get('model') or 'ViT-B-32'}":
        return False
    weights = options.get("weights") or DOWNLOAD
    if weights == DOWNLOAD:
        return text["weights"] == DOWNLOAD and text["pretrained"] == str(options.get("pretrained"))
    return Path(weights).is_file() and text["weights_sha256"] == sha256(Path(weights))
