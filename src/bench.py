"""Benchmark: the framework's training loop and pool refresh against a plain PyTorch loop.

``python -m src.bench [--device cpu|cuda] [sizes]`` prints a table and, as its last line, one JSON
object. Both loops run in the same process on the same random CUB-sized problem (7,057 images,
d = 2,048, 150 seen classes, k = r = 312, K = 5, batches of 1,024 pairs by default):

- ``framework``: ``Trainer.fit`` of :class:`~src.models.MetricZSLSystem` with the negative-pool
  callback, Lightning included (image-major batches of ``batch_pairs / (K + 1)`` images);
- ``reference``: a hand-written loop doing METHOD.md's per-pair math, ``D = ‖L(Wᵀx − a)‖²`` for
  each of the 1,024 (image, class) pairs of a batch, the same loss, Adam.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import time
import warnings

import lightning as L
import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from src.callbacks import NegativePoolRefresh
from src.data.arrays import ZSLArrays
from src.data.base import ZSLDataModule
from src.mining import HardestMiner, MiningInputs, RandomMiner
from src.models import BilinearMetric, MetricZSLSystem
from src.models.objective import metric_objective


class RandomProblem(ZSLDataModule):
    """Random features and signatures of the requested sizes (2 extra unseen classes)."""

    def __init__(self, images: int, dim: int, classes: int, sig_dim: int, **kwargs) -> None:
        super().__init__(split_mode="test", standardise=False, **kwargs)
        self.sizes = (images, dim, classes, sig_dim)

    def load_arrays(self) -> ZSLArrays:
        images, dim, classes, sig_dim = self.sizes
        rng = np.random.default_rng(0)
        # images training images, then 2 test_seen images of seen classes, then 2 unseen ones.
        labels = np.r_[rng.integers(0, classes, images + 2), [classes, classes + 1]]
        return ZSLArrays(
            rng.standard_normal((images + 4, dim), dtype=np.float32),
            labels,
            rng.random((classes + 2, sig_dim), dtype=np.float32),
            [f"c{i}" for i in range(classes + 2)],
            {
                "trainval": np.arange(images),
                "test_seen": np.array([images, images + 1]),
                "test_unseen": np.array([images + 2, images + 3]),
            },
            source="random benchmark problem",
        )


class EpochTimer(L.Callback):
    """Wall time of every training epoch (the pool refresh at its start included)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times, self._start = device, [], 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        _sync(self.device)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        _sync(self.device)
        self.times.append(time.perf_counter() - self._start)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def framework_epoch_s(args: argparse.Namespace, device: torch.device) -> float:
    """Median epoch time of ``Trainer.fit`` after a warm-up epoch."""
    images_per_batch = max(1, args.batch_pairs // (args.negatives + 1))
    data = RandomProblem(
        args.images, args.dim, args.classes, args.sig_dim, batch_size=images_per_batch
    )
    data.setup("fit")
    model = MetricZSLSystem(data.feature_dim, data.signature_dim, init="ridge")
    timer = EpochTimer(device)
    pool = NegativePoolRefresh(RandomMiner(num_negatives=args.negatives))
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=args.epochs + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=[pool, timer],
    )
    trainer.fit(model, datamodule=data)
    return float(np.median(timer.times[1:]))


def reference_epoch_s(args: argparse.Namespace, device: torch.device) -> float:
    """Median epoch time of the plain per-pair loop on the same problem and batch size."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, args.dim, generator=gen).to(device)
    labels = torch.randint(0, args.classes, (args.images,), generator=gen).to(device)
    signatures = torch.rand(args.classes, args.sig_dim, generator=gen).to(device)
    metric = BilinearMetric(args.dim, args.sig_dim).to(device)
    optimiser = torch.optim.Adam(metric.parameters(), lr=1e-3, weight_decay=1e-4)
    # One epoch: every image with its positive and K random negatives, as pairs.
    offsets = torch.randint(1, args.classes, (args.images, args.negatives), generator=gen)
    negatives = (labels.cpu()[:, None] + offsets) % args.classes
    pair_image = torch.arange(args.images).repeat_interleave(args.negatives + 1).to(device)
    pair_class = torch.cat([labels.cpu()[:, None], negatives], 1).reshape(-1).to(device)
    pair_positive = (torch.arange(args.negatives + 1) == 0).repeat(args.images).to(device)
    times = []
    for _ in range(args.epochs + 1):
        _sync(device)
        start = time.perf_counter()
        for batch in torch.randperm(len(pair_image), device=device).split(args.batch_pairs):
            images, classes, positive = pair_image[batch], pair_class[batch], pair_positive[batch]
            feats, sigs = x[images], signatures[classes]
            d = metric.pair_distances(feats, sigs)
            err = (metric.embed(feats[positive]) - sigs[positive]).square().sum(-1)
            loss = metric_objective(d[positive], d[~positive], metric.b, err, 1.0, 1.0, 0.1)
            optimiser.zero_grad(set_to_none=True)
            loss["loss"].backward()
            optimiser.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


@torch.no_grad()
def pool_refresh(args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(seconds, peak MB) to score pool_images × pool_classes pairs and keep the K smallest."""
    gen = torch.Generator().manual_seed(1)
    metric = BilinearMetric(args.dim, args.sig_dim).to(device)
    metric.W.copy_(torch.randn(args.dim, args.sig_dim, generator=gen) / args.dim**0.5)
    signatures = torch.rand(args.pool_classes, args.sig_dim, generator=gen).to(device)
    features = torch.randn(args.pool_images, args.dim, generator=gen).to(device)
    labels = torch.randint(0, args.pool_classes, (args.pool_images,), generator=gen).to(device)
    callback = NegativePoolRefresh(HardestMiner(args.negatives), memory_budget_mb=args.budget_mb)
    rows = callback.chunk_rows(args.pool_classes)
    similarity = torch.zeros(args.pool_classes, args.pool_classes, device=device)
    miner, generator = callback.miner, torch.Generator(device=device).manual_seed(0)

    def run() -> None:
        class_proj = metric.project_signatures(signatures)
        projection = metric.W @ metric.L.T
        for start in range(0, args.pool_images, rows):
            d = metric.distances_from_projections(
                features[start : start + rows] @ projection, class_proj
            )
            miner.mine(MiningInputs(d, labels[start : start + rows], 0.0, similarity), generator)

    # Memory on the first pass (the process's peak resident size cannot be reset on CPU),
    # time on the second.
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    run()
    if device.type == "cuda":
        peak_mb = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:  # growth of the process's peak resident memory (KiB on Linux)
        peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    _sync(device)
    start = time.perf_counter()
    run()
    _sync(device)
    seconds = time.perf_counter() - start
    return seconds, peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--images", type=int, default=7057)
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--sig-dim", type=int, default=312)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--batch-pairs", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs (after 1 warm-up)")
    parser.add_argument("--pool-images", type=int, default=None, help="1,000,000 on GPU")
    parser.add_argument("--pool-classes", type=int, default=1000)
    parser.add_argument("--budget-mb", type=float, default=256.0, help="pool memory budget")
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.pool_images is None:
        args.pool_images = 1_000_000 if device.type == "cuda" else 100_000
    logging.getLogger("lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    epoch_pairs = args.images * (args.negatives + 1)
    framework_s = framework_epoch_s(args, device)
    reference_s = reference_epoch_s(args, device)
    pool_s, pool_mb = pool_refresh(args, device)
    result = {
        "framework_pairs_per_s": epoch_pairs / framework_s,
        "reference_pairs_per_s": epoch_pairs / reference_s,
        "ratio": reference_s / framework_s,
        "epoch_s": framework_s,
        "reference_epoch_s": reference_s,
        "pool_pairs_per_s": args.pool_images * args.pool_classes / pool_s,
        "pool_refresh_s": pool_s,
        "pool_peak_mem_mb": pool_mb,
        "pool_budget_mb": args.budget_mb,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": torch.get_num_threads(),
        "sizes": {k: getattr(args, k) for k in ("images", "dim", "classes", "sig_dim")},
        "batch_pairs": args.batch_pairs,
    }
    table = Table(title=f"zsl-hardneg benchmark on {result['device']}")
    for column in ("measure", "framework", "plain PyTorch"):
        table.add_column(column, justify="right")
    table.add_row("epoch (s)", f"{framework_s:.3f}", f"{reference_s:.3f}")
    table.add_row(
        "training pairs / s",
        f"{epoch_pairs / framework_s:,.0f}",
        f"{epoch_pairs / reference_s:,.0f}",
    )
    table.add_row("ratio", f"{result['ratio']:.2f}", "1.00")
    table.add_row(
        f"pool refresh {args.pool_images:,} × {args.pool_classes:,} (s)", f"{pool_s:.3f}", ""
    )
    table.add_row("pool peak memory (MB)", f"{pool_mb:.0f} (budget {args.budget_mb:.0f})", "")
    Console().print(table)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
