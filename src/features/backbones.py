"""Backbones that turn an image into a feature vector, chosen by ``features.backbone``:

- ``torchvision:<name>`` (e.g. ``torchvision:resnet101``, the GBU standard: 2048-d pooled
  penultimate layer of an ImageNet ResNet-101 at a 224² centre crop): the model's classifier
  head replaced by the identity; the preprocessing is the library's own, that of the weights
  entry ``features.preset`` (``IMAGENET1K_V1``: resize 256, crop 224, ImageNet mean and std);
- ``timm:<name>`` (e.g. ``timm:vit_base_patch16_224``): ``num_classes=0``, the pooled
  pre-logits features; the preprocessing from the model's pretrained config
  (``timm.data.resolve_model_data_config``, ``create_transform``);
- ``open_clip:<arch>`` (e.g. ``open_clip:ViT-B-32``): CLIP's image embedding
  (``encode_image``) with open_clip's own validation transform.

Weights (``features.weights``): a local file (a state dict of the whole model, as the library
saves it; a ``{"state_dict": …}`` checkpoint too), or ``download``: the library's own download
(torchvision's weights entry ``features.preset``, timm's pretrained tag, open_clip's
``features.pretrained`` tag). A missing or mismatched file stops in one line naming the file
and the architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.core.errors import ConfigError
from src.pretrained.weights import DOWNLOAD, load_into, sha256

FAMILIES = ("torchvision", "timm", "open_clip")


@dataclass
class Backbone:
    """A feature extractor: ``model`` maps a batch of preprocessed images to N × ``dim``."""

    spec: str
    model: nn.Module
    transform: Callable[[Any], torch.Tensor]
    dim: int
    #: the shape of one preprocessed image (what an unreadable image's placeholder takes)
    input_shape: tuple[int, ...] = ()
    provenance: dict[str, str] = field(default_factory=dict)


class ImageEmbedding(nn.Module):
    """open_clip's ``encode_image`` as a module (what ``forward`` of CLIP is not)."""

    def __init__(self, clip: nn.Module) -> None:
        super().__init__()
        self.clip = clip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.clip.encode_image(images)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"timm:resnet18"`` → ``("timm", "resnet18")``, or one line saying what is expected."""
    family, _, name = str(spec).partition(":")
    if family not in FAMILIES or not name:
        raise ConfigError(
            f"features.backbone={spec!r} is invalid: use <library>:<architecture> with library one "
            f"of {list(FAMILIES)}, e.g. torchvision:resnet101, timm:vit_base_patch16_224, "
            "open_clip:ViT-B-32."
        )
    return family, name


def _strip_head(model: nn.Module) -> None:
    """Replace a torchvision classifier's last linear layer by the identity (pooled features)."""
    for name in ("fc", "head", "heads", "classifier"):
        head = getattr(model, name, None)
        if isinstance(head, nn.Linear):
            setattr(model, name, nn.Identity())
            return
        if isinstance(head, nn.Sequential) and isinstance(head[-1], nn.Linear):
            head[-1] = nn.Identity()
            return
    raise ConfigError(
        f"torchvision model {type(model).__name__}: no classifier head (fc, head, heads or "
        "classifier ending in a linear layer) to remove; use a classification model."
    )


def _torchvision(name: str, weights: str | None, preset: str) -> tuple[nn.Module, Callable, dict]:
    from src.pretrained.compat import import_torchvision

    tv = import_torchvision()
    spec = f"torchvision:{name}"
    try:
        entries = tv.models.get_model_weights(name)
    except ValueError:
        raise ConfigError(
            f"features.backbone={spec}: torchvision has no classification model {name!r} "
            f"(e.g. {', '.join(sorted(tv.models.list_models(tv.models))[:6])}, …)."
        ) from None
    try:
        entry = entries[preset] if preset != "DEFAULT" else entries.DEFAULT
    except KeyError:
        raise ConfigError(
            f"features.preset={preset}: {name} has weights entries {[e.name for e in entries]}."
        ) from None
    if weights == DOWNLOAD:
        model = tv.models.get_model(name, weights=entry)
    else:
        model = tv.models.get_model(name, weights=None)
        load_into(model, Path(weights), spec)
    _strip_head(model)
    return model, entry.transforms(), {"preset": entry.name}


def _timm(name: str, weights: str | None) -> tuple[nn.Module, Callable, dict]:
    from src.pretrained.compat import import_torchvision

    import_torchvision()  # timm imports it
    import timm

    spec = f"timm:{name}"
    if not timm.list_models(name) and not timm.list_models(name.split(".")[0]):
        raise ConfigError(f"features.backbone={spec}: timm has no model {name!r}.")
    model = timm.create_model(name, pretrained=weights == DOWNLOAD)
    if weights != DOWNLOAD:
        load_into(model, Path(weights), spec)
    model.reset_classifier(0)
    config = timm.data.resolve_model_data_config(model)
    return (
        model,
        timm.data.create_transform(**config, is_training=False),
        {"data_config": str(config)},
    )


def _open_clip(name: str, weights: str | None, pretrained: str | None):
    from src.pretrained.compat import import_torchvision

    import_torchvision()  # open_clip imports it
    import open_clip

    spec = f"open_clip:{name}"
    if name not in open_clip.list_models():
        raise ConfigError(f"features.backbone={spec}: open_clip has no model {name!r}.")
    if weights == DOWNLOAD and not pretrained:
        tags = [t for a, t in open_clip.list_pretrained() if a == name]
        raise ConfigError(f"features.pretrained is needed to download {spec}: one of {tags}.")
    clip, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained if weights == DOWNLOAD else None
    )
    if weights != DOWNLOAD:
        load_into(clip, Path(weights), spec)
    return ImageEmbedding(clip), preprocess, {"pretrained": str(pretrained)}


def build(
    spec: str, weights: str | None, preset: str = "IMAGENET1K_V1", pretrained=None
) -> Backbone:
    """The backbone ``spec`` with its weights, in eval mode on the CPU."""
    family, name = parse_spec(spec)
    if weights in (None, ""):
        raise ConfigError(
            "features.weights is not set: give a local weights file of "
            f"{spec} (torch.save(model.state_dict(), path)) or features.weights=download."
        )
    if family == "torchvision":
        model, transform, extra = _torchvision(name, weights, preset)
    elif family == "timm":
        model, transform, extra = _timm(name, weights)
    else:
        model, transform, extra = _open_clip(name, weights, pretrained)
    model.eval()
    with torch.inference_mode():
        probe = transform(_blank_image())
        dim = int(model(probe.unsqueeze(0)).reshape(1, -1).shape[1])
    provenance = {
        "backbone": spec,
        "weights": DOWNLOAD if weights == DOWNLOAD else str(Path(weights).resolve()),
        "weights_sha256": "" if weights == DOWNLOAD else sha256(Path(weights)),
        "preprocessing": " ".join(repr(transform).split()),
        **{k: str(v) for k, v in extra.items()},
    }
    return Backbone(spec, model, transform, dim, tuple(probe.shape), provenance)


def _blank_image():
    from PIL import Image

    return Image.new("RGB", (256, 256))


def save_random_weights(spec: str, path: Path) -> Path:
    """A randomly initialised ``spec`` model's whole state dict (seed 0), saved as the library
    saves it: what ``features.weights`` reads, for tests and the benchmark (no download)."""
    from src.pretrained.compat import import_torchvision

    family, name = parse_spec(spec)
    torch.manual_seed(0)
    if family == "torchvision":
        model = import_torchvision().models.get_model(name, weights=None)
    elif family == "timm":
        import timm

        model = timm.create_model(name, pretrained=False)
    else:
        import open_clip

        model = open_clip.create_model(name, pretrained=None)
    torch.save(model.state_dict(), path)
    return path
