"""The extraction: batched through a ``DataLoader``, saved in chunks, resumable, one file out.

Images are cut into chunks of ``features.chunk_size`` in their order; each chunk's features
are computed in batches (the same batches whatever happened before) and saved whole
(``<output>/.features-<key>/chunk-<i>.npz``, written beside and renamed). A stopped run
(Ctrl-C, ``kill -9``, a pre-empted job) continues at its first missing chunk, so it ends with
the file an uninterrupted run writes, byte for byte. ``<key>`` is a hash of everything that
decides the numbers (backbone, weights' SHA-256, preprocessing, the image list, batch and
chunk size, device and precision): another setting never mixes its chunks in.

On a GPU: ``torch.inference_mode``, bf16 autocast and channels-last; pinned memory and reader
processes on every device. A progress bar shows images/s and the ETA.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Subset

from src.core.errors import ConfigError
from src.data.arrays import DataError
from src.features.backbones import Backbone, build
from src.features.images import ImageFiles, ImageList, folder_images, listed_images

log = logging.getLogger(__name__)

INPUTS = ("folder", "list")
BAD_IMAGES = ("refuse", "skip")
#: the type of every ``features.*`` value (``split.*`` inside ``features.split``), checked by
#: :func:`check` with the train config's rules (src/cli/config_checks.py)
FEATURE_TYPES = {
    "input": str,
    "images": str,
    "image_list": str | None,
    "prefix": list[str] | None,
    "dataset": str,
    "output_dir": str,
    "file": str,
    "overwrite": bool,
    "backbone": str,
    "weights": str,
    "preset": str | None,
    "pretrained": str | None,
    "batch_size": int,
    "num_workers": int,
    "chunk_size": int,
    "device": str,
    "bad_images": str,
    "split.unseen": list[str],
    "split.test_seen_fraction": float,
    "split.val_fraction": float,
    "split.seed": int,
    "signatures": str,
}


def versions() -> str:
    """The libraries that computed the features."""
    import importlib.metadata as metadata

    found = []
    for name in ("torch", "torchvision", "timm", "open_clip_torch", "pillow"):
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return " ".join(found)


def device_of(setting: str) -> torch.device:
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"features.device={setting}: no CUDA device here; use cpu or auto.")
    return torch.device(setting)


def check_types(f: DictConfig) -> None:
    """Each set ``features.*`` value of its :data:`FEATURE_TYPES` type, the fractions in (0, 1),
    the split's seed a valid seed and ``prefix`` a pair; a key that is not one is named too."""
    from src.core.checks import SEED_RANGE, check_int, describe, matches

    values = OmegaConf.to_container(f, resolve=False, throw_on_missing=False)
    given = {k: v for k, v in values.items() if k != "split"}
    given.update({f"split.{k}": v for k, v in (values.get("split") or {}).items()})
    for key, value in given.items():
        if key not in FEATURE_TYPES:
            raise ConfigError(
                f"features.{key} is not a setting of src.features; they are: "
                f"{', '.join(FEATURE_TYPES)}."
            )
        if value == "???" or (isinstance(value, str) and "${" in value):
            continue  # missing (named below) or interpolated (checked once resolved)
        hint = FEATURE_TYPES[key]
        if not matches(value, hint):
            shown = repr(value) if isinstance(value, str) else value
            raise ConfigError(f"features.{key}={shown} is invalid: it must be {describe(hint)}.")
    for key in ("split.test_seen_fraction", "split.val_fraction"):
        if key in given and not 0 < given[key] < 1:
            raise ConfigError(f"features.{key}={given[key]} is invalid: it must lie in (0, 1).")
    check_int("features.split.seed", given.get("split.seed", 0), *SEED_RANGE)
    if given.get("prefix") is not None and len(given["prefix"]) != 2:
        raise ConfigError(
            f"features.prefix={given['prefix']} is invalid: give [<old>, <new>], two strings."
        )


def check(f: DictConfig) -> None:
    """Every ``features.*`` value that can be checked before a model or an image is read."""
    check_types(f)
    needed = {
        "images": "the image folder (input=folder) or the images' root (input=list)",
        "dataset": "the name of the dataset folder to write under the data root",
    }
    for key, what in needed.items():
        if OmegaConf.is_missing(f, key):
            raise ConfigError(f"features.{key} is not set: give {what}.")
    if f.input == "folder" and OmegaConf.is_missing(f.split, "unseen"):
        raise ConfigError(
            "features.split.unseen is not set: name the unseen classes' folders, "
            "e.g. 'features.split.unseen=[zebra,okapi]'."
        )
    if f.input not in INPUTS:
        raise ConfigError(f"features.input={f.input!r} is invalid: use one of {list(INPUTS)}.")
    if f.bad_images not in BAD_IMAGES:
        raise ConfigError(
            f"features.bad_images={f.bad_images!r} is invalid: use one of {list(BAD_IMAGES)}."
        )
    if f.input == "list" and f.bad_images == "skip":
        raise ConfigError(
            "features.bad_images=skip needs input=folder: a listed dataset keeps its image order "
            "(att_splits.mat's indices point into it), so an unreadable image is refused."
        )
    for key in ("batch_size", "chunk_size"):
        if not isinstance(f[key], int) or isinstance(f[key], bool) or f[key] < 1:
            raise ConfigError(f"features.{key}={f[key]!r} is invalid: it must be an integer ≥ 1.")
    if not isinstance(f.num_workers, int) or f.num_workers < 0:
        raise ConfigError(f"features.num_workers={f.num_workers!r} is invalid: an integer ≥ 0.")
    if f.output_dir in (None, "None") or str(f.output_dir).startswith("None/"):
        raise ConfigError(
            "features.output_dir is not set: set ZSL_DATA_DIR (the data root) or "
            "features.output_dir=<folder>."
        )


def chunk_key(backbone: Backbone, images: ImageList, f: DictConfig, device: torch.device) -> str:
    identity = {
        "provenance": backbone.provenance,
        "images": [str(p) for p in images.paths],
        "batch_size": f.batch_size,
        "chunk_size": f.chunk_size,
        "device": device.type,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def extract_chunk(
    backbone: Backbone,
    dataset: ImageFiles,
    indices: range,
    f: DictConfig,
    device: torch.device,
    progress: Callable[[int], object],
) -> tuple[np.ndarray, np.ndarray]:
    """Features (n × d, float32) and readability (n,) of the images ``indices``."""
    loader = DataLoader(
        Subset(dataset, list(indices)),
        batch_size=f.batch_size,
        shuffle=False,
        num_workers=f.num_workers,
        pin_memory=device.type == "cuda",
    )
    features, readable = [], []
    gpu = device.type == "cuda"
    with torch.inference_mode():
        for _, batch, ok in loader:
            batch = batch.to(device, non_blocking=True)
            if gpu:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu):
                out = backbone.model(batch)
            features.append(out.float().reshape(len(batch), -1).cpu().numpy())
            readable.append(ok.numpy().astype(bool))
            progress(len(batch))
    return np.concatenate(features), np.concatenate(readable)


def run_chunks(backbone: Backbone, images: ImageList, f: DictConfig, folder: Path, device) -> tuple:
    """Every chunk computed or found; (features N × d, readable N)."""
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    dataset = ImageFiles(images.paths, backbone.transform, backbone.input_shape)
    total = len(images.paths)
    chunks = math.ceil(total / f.chunk_size)
    done = [i for i in range(chunks) if (folder / f"chunk-{i:05d}.npz").is_file()]
    if done:
        log.info("continuing: %d of %d chunks already extracted in %s", len(done), chunks, folder)
    bar = tqdm(total=total, unit="img", desc=backbone.spec, dynamic_ncols=True)
    bar.update(sum(min(f.chunk_size, total - i * f.chunk_size) for i in done))
    for i in range(chunks):
        path = folder / f"chunk-{i:05d}.npz"
        if path.is_file():
            continue
        indices = range(i * f.chunk_size, min(total, (i + 1) * f.chunk_size))
        features, readable = extract_chunk(backbone, dataset, indices, f, device, bar.update)
        partial = path.with_name(path.name + ".partial.npz")
        np.savez(partial, features=features, readable=readable)
        os.replace(partial, path)
    bar.close()
    parts = [np.load(folder / f"chunk-{i:05d}.npz") for i in range(chunks)]
    return (
        np.concatenate([p["features"] for p in parts]),
        np.concatenate([p["readable"] for p in parts]),
    )


def run(cfg: DictConfig) -> dict:
    """``python -m src.features``: extract, then write the features file (and, for a folder,
    ``att_splits.mat`` and the class lists). Returns what it wrote."""
    from src.features.matfile import save_mat

    f = cfg.features
    check(f)
    out = Path(str(f.output_dir))
    target = out / f.file
    if target.exists() and not f.overwrite:
        raise ConfigError(
            f"{target} exists: pick another features.file or features.dataset, or pass "
            "features.overwrite=true to replace it."
        )
    if f.input == "folder":
        images = folder_images(Path(str(f.images)))
        if (out / "att_splits.mat").exists() and not f.overwrite:
            raise ConfigError(
                f"{out / 'att_splits.mat'} exists: pick another features.dataset, or pass "
                "features.overwrite=true to replace it."
            )
    else:
        if not f.image_list:
            raise ConfigError("features.input=list needs features.image_list=<res101.mat or .txt>.")
        prefix = list(f.prefix) if f.prefix else None
        images = listed_images(Path(str(f.image_list)), prefix, Path(str(f.images)))
        missing = [p for p in images.paths if not p.is_file()]
        if missing:
            raise ConfigError(
                f"{len(missing)} of {len(images.paths)} listed images are not on disk, e.g. "
                f"{missing[0]}: check features.images / features.prefix."
            )
    device = device_of(str(f.device))
    backbone = build(f.backbone, f.weights, f.preset, f.pretrained)
    backbone.model.to(device)
    if device.type == "cuda":
        backbone.model.to(memory_format=torch.channels_last)
    log.info(
        "%s: %d images of %d classes → %d-d features (%s)",
        backbone.spec,
        len(images.paths),
        len(images.classes),
        backbone.dim,
        device,
    )
    chunks = out / f".features-{chunk_key(backbone, images, f, device)}"
    features, readable = run_chunks(backbone, images, f, chunks, device)
    bad = [name for name, ok in zip(images.names, readable, strict=True) if not ok]
    for name in bad:
        log.warning("unreadable image: %s", name)
    if bad and f.bad_images == "refuse":
        raise DataError(
            f"{len(bad)} of {len(images.paths)} images cannot be read (listed above, first: "
            f"{bad[0]}): fix or remove them, or pass features.bad_images=skip (input=folder); "
            f"the extracted chunks are kept in {chunks}."
        )
    keep = np.flatnonzero(readable)
    kept = ImageList(
        [images.paths[i] for i in keep],
        [images.names[i] for i in keep],
        images.labels[keep],
        images.classes,
    )
    provenance = {**backbone.provenance, "versions": versions(), "device": device.type}
    contents = {
        "features": features[keep].T.astype(np.float32),
        "labels": kept.labels.reshape(-1, 1).astype(np.float64),
        "image_files": np.array([[n] for n in kept.names], dtype=object),
        "skipped_files": np.array([[n] for n in bad], dtype=object).reshape(-1, 1),
        **{key: np.array(value) for key, value in provenance.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    save_mat(target, contents)
    written = {"features": str(target), "images": len(keep), "skipped": bad, "dim": backbone.dim}
    if f.input == "folder":
        written["att_splits"] = str(write_folder_splits(kept, f, out, cfg))
    shutil.rmtree(chunks)
    log.info("wrote %s: %d × %d features%s", target, backbone.dim, len(keep), _skipped(bad))
    return written


def _skipped(bad: list[str]) -> str:
    return f" ({len(bad)} unreadable images skipped, in skipped_files)" if bad else ""


def write_folder_splits(images: ImageList, f: DictConfig, out: Path, cfg: DictConfig) -> Path:
    from src.features.image_splits import (
        gbu_splits,
        signatures_of,
        validation_classes,
        write_splits,
    )

    split = gbu_splits(
        images, list(f.split.unseen), float(f.split.test_seen_fraction), f.split.seed
    )
    unseen = set(f.split.unseen)
    seen = [c for c in images.classes if c not in unseen]
    val = validation_classes(seen, float(f.split.val_fraction), int(f.split.seed))
    signatures = signatures_of(str(f.signatures), images.classes, cfg.paths.get("cache_dir"))
    target = out / "att_splits.mat"
    write_splits(
        out, images, signatures, split, val, {"signature_source": np.array(str(f.signatures))}
    )
    return target
