"""``python -m src.bench --extraction``: images/s of ``src.features`` against a plain loop.

Both read the same generated JPEG images through the same ``DataLoader`` (the backbone's own
transform, ``--batch-size``, ``--workers``) into the same model, in this process, alternating,
the best of two runs each, after one warm-up batch. The framework's path is
:func:`src.features.extract.extract_chunk` (inference mode, the readability flags, bf16
autocast and channels-last on a GPU, the chunk's arrays); the plain loop is ``for batch in
loader: model(batch)`` under ``torch.inference_mode`` (fp32, what a user's script does). The
backbone is randomly initialised (the speed does not depend on the weights).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch


def make_images(folder: Path, count: int, size: int = 375) -> list[Path]:
    """``count`` random JPEGs of ``size`` × ``size`` · 4/3 (a typical photo)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size * 4 // 3, 3), dtype=np.uint8)
        paths.append(folder / f"{i:05d}.jpg")
        Image.fromarray(pixels).save(paths[-1], quality=90)
    return paths


def measure(spec: str, images: int, batch_size: int, workers: int, device: torch.device) -> dict:
    from torch.utils.data import DataLoader

    from src.features.extract import extract_chunk
    from src.features.images import ImageFiles

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = make_images(folder, images)
        from src.features.backbones import build, save_random_weights

        backbone = build(spec, str(save_random_weights(spec, folder / "weights.pt")))
        backbone.model.to(device)
        if device.type == "cuda":
            backbone.model.to(memory_format=torch.channels_last)
        size = backbone.input_shape
        dataset = ImageFiles(paths, backbone.transform, size)
        settings = SimpleNamespace(batch_size=batch_size, num_workers=workers)

        def framework() -> None:
            extract_chunk(backbone, dataset, range(len(paths)), settings, device, lambda n: None)

        plain_model = backbone.model.float()

        def plain() -> None:
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=workers,
                pin_memory=device.type == "cuda",
            )
            with torch.inference_mode():
                for _, batch, _ in loader:
                    plain_model(batch.to(device))
            if device.type == "cuda":
                torch.cuda.synchronize()

        warm = ImageFiles(paths[:batch_size], backbone.transform, size)
        extract_chunk(backbone, warm, range(len(warm)), settings, device, lambda n: None)
        times: dict[str, list[float]] = {"framework": [], "plain": []}
        for _ in range(2):  # alternating, the best of two each
            for name, run in (("framework", framework), ("plain", plain)):
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        framework_s, plain_s = min(times["framework"]), min(times["plain"])
        return {
            "backbone": spec,
            "dim": backbone.dim,
            "images": images,
            "batch_size": batch_size,
            "workers": workers,
            "framework_images_per_s": images / framework_s,
            "plain_images_per_s": images / plain_s,
            "ratio": plain_s / framework_s,
            "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
            "threads": torch.get_num_threads(),
        }
