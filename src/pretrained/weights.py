"""Pretrained weights from a local file, checked: what the feature backbones
(:mod:`src.features.backbones`) and the CLIP class signatures (:mod:`src.data.clip_signatures`)
load. A missing file, a file torch cannot read with its restricted unpickler, or weights of
another architecture stop in one line naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from src.core.errors import ConfigError

#: ``features.weights`` / ``data.clip.weights``: the library's own download, not a file
DOWNLOAD = "download"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_weights(path: Path, spec: str) -> dict[str, torch.Tensor]:
    """The state dict in ``path`` (tensors only: torch's restricted unpickler)."""
    if not path.is_file():
        raise ConfigError(
            f"features.weights={path}: no such file; give the weights of {spec} saved with "
            "torch.save(model.state_dict(), path), or features.weights=download."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, or one holding foreign objects
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(
            f"{path}: not a weights file of {spec} torch can read ({first})."
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path}: not a state dict (names → tensors) of {spec}.")
    return state


def load_into(model: nn.Module, path: Path, spec: str) -> None:
    """Load ``path`` into ``model`` strictly, or one line naming what does not match."""
    state = read_weights(path, spec)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        detail = "; ".join(
            f"{what} {len(keys)} (e.g. {keys[0]})"
            for what, keys in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("other shape", shapes),
            )
            if keys
        )
        raise ConfigError(f"{path}: these weights are not {spec}'s: {detail}.")
    model.load_state_dict(state)
