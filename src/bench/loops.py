"""The timed loops of the benchmark: framework, plain image-major, plain per-pair, pool refresh."""

from __future__ import annotations

import argparse
import contextlib
import resource
import time
from collections.abc import Iterator

import lightning as L
import numpy as np
import torch

from src.callbacks.negative_pool import NegativePoolRefresh
from src.data.arrays import ZSLArrays
from src.data.datamodule import ZSLDataModule
from src.mining.hardest_miner import HardestMiner
from src.mining.pool import NegativePool
from src.mining.random_miner import RandomMiner
from src.models.losses import PairLogisticLoss
from src.models.metric import BilinearMetric
from src.models.objective import metric_objective
from src.models.pool_trained import PoolScorer
from src.models.system import MetricZSLSystem

#: the model's settings in every loop (the framework's defaults, ridge initialisation)
LR, WEIGHT_DECAY, BETA, ATTRIBUTE_WEIGHT = 1e-3, 1e-4, 1.0, 0.1


class RandomProblem(ZSLDataModule):
    """Random features and signatures of the requested sizes (2 extra unseen classes)."""

    def __init__(self, images: int, dim: int, classes: int, sig_dim: int, **kwargs) -> None:
        super().__init__(split_mode="test", standardise=False, **kwargs)
        self.sizes = (images, dim, classes, sig_dim)

    def load_arrays(self) -> ZSLArrays:
        images, dim, classes, sig_dim = self.sizes
        rng = np.random.default_rng(0)
        # images training images, then one test_seen image per seen class, then 2 unseen ones.
        labels = np.r_[rng.integers(0, classes, images), np.arange(classes), [classes, classes + 1]]
        total = images + classes + 2
        return ZSLArrays(
            rng.standard_normal((total, dim), dtype=np.float32),
            labels,
            rng.random((classes + 2, sig_dim), dtype=np.float32),
            [f"c{i}" for i in range(classes + 2)],
            {
                "trainval": np.arange(images),
                "test_seen": np.arange(images, images + classes),
                "test_unseen": np.arange(images + classes, total),
            },
            source="random benchmark problem",
        )


class EpochTimer(L.Callback):
    """Wall time of every training epoch (the pool refresh at its start included)."""

    def __init__(self, device: torch.device) -> None:
        self.device, self.times, self._start = device, [], 0.0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        sync(self.device)
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        sync(self.device)
        self.times.append(time.perf_counter() - self._start)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def deterministic_mode(device: torch.device) -> bool | str:
    """``trainer.deterministic`` of the framework's configs: ``True`` on the CPU
    (conf/trainer/cpu.yaml), ``"warn"`` on a GPU (conf/trainer/gpu.yaml)."""
    return "warn" if device.type == "cuda" else True


@contextlib.contextmanager
def deterministic_kernels(mode: bool | str) -> Iterator[None]:
    """torch's deterministic-algorithms switch set as Lightning sets it for ``deterministic=mode``
    (``"warn"``: on, warning where an operation has no deterministic kernel), then restored."""
    previous = torch.are_deterministic_algorithms_enabled()
    previous_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(bool(mode), warn_only=mode == "warn")
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=previous_warn)


def images_per_batch(args: argparse.Namespace) -> int:
    return max(1, args.batch_pairs // (args.negatives + 1))


def framework_epoch_s(args: argparse.Namespace, device: torch.device) -> float:
    """Median epoch time of ``Trainer.fit`` after a warm-up epoch."""
    data = RandomProblem(
        args.images, args.dim, args.classes, args.sig_dim, batch_size=images_per_batch(args)
    )
    data.setup("fit")
    model = MetricZSLSystem(
        data.feature_dim, data.signature_dim, lr=LR, weight_decay=WEIGHT_DECAY, init="ridge"
    )
    timer = EpochTimer(device)
    pool = NegativePoolRefresh(NegativePool(RandomMiner(num_negatives=args.negatives)))
    trainer = L.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        max_epochs=args.epochs + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,  # training epochs only, as in the plain loops
        callbacks=[pool, timer],
        deterministic=deterministic_mode(device),
    )
    with deterministic_kernels(deterministic_mode(device)):  # Trainer.fit leaves it set
        trainer.fit(model, datamodule=data)
    return float(np.median(timer.times[1:]))


def _problem(args: argparse.Namespace, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(args.images, args.dim, generator=gen).to(device)
    labels = torch.randint(0, args.classes, (args.images,), generator=gen).to(device)
    signatures = torch.rand(args.classes, args.sig_dim, generator=gen).to(device)
    return x, labels, signatures


def _random_negatives(labels: torch.Tensor, classes: int, k: int) -> torch.Tensor:
    """K distinct classes per image, never its own: the K largest of uniform keys."""
    keys = torch.rand(len(labels), classes, device=labels.device)
    keys.scatter_(1, labels[:, None], -1.0)
    return keys.topk(k, dim=1).indices


def _times(epochs: int, device: torch.device, epoch) -> float:
    """Median time of ``epochs`` calls of ``epoch`` after a warm-up call."""
    times = [_timed_once(device, epoch) for _ in range(epochs + 1)]
    return float(np.median(times[1:]))


def image_major_epoch_s(args: argparse.Namespace, device: torch.device) -> float:
    """Median epoch time of a plain loop with the framework's math and batches, no Lightning.

    Every epoch: K random negatives per image, then batches of ``batch_pairs / (K + 1)``
    images, each image projected once and scored against its positive and K negatives; the
    objective, Adam and the weight decay towards the initialisation as the framework does.
    """
    x, labels, signatures = _problem(args, device)
    metric = BilinearMetric(args.dim, args.sig_dim).to(device)
    start_w, start_l = metric.W.detach().clone(), metric.L.detach().clone()
    decayed = [(metric.W, start_w), (metric.L, start_l)]
    optimiser = torch.optim.Adam(metric.parameters(), lr=LR)

    def epoch() -> None:
        negatives = _random_negatives(labels, args.classes, args.negatives)
        for batch in torch.randperm(args.images, device=device).split(images_per_batch(args)):
            feats, y, neg = x[batch], labels[batch], negatives[batch]
            embedded = feats @ metric.W
            image_proj = embedded @ metric.L.T
            class_proj = signatures @ metric.L.T
            pos_d = (image_proj - class_proj[y]).square().sum(-1)
            neg_d = (image_proj[:, None, :] - class_proj[neg]).square().sum(-1)
            err = (embedded - signatures[y]).square().sum(-1)
            loss = metric_objective(pos_d, neg_d, metric.b, err, BETA, 1.0, ATTRIBUTE_WEIGHT)
            optimiser.zero_grad(set_to_none=True)
            loss["loss"].backward()
            for param, start in decayed:
                param.grad.add_(param.detach() - start, alpha=WEIGHT_DECAY)
            optimiser.step()

    return _times(args.epochs, device, epoch)


def per_pair_epoch_s(args: argparse.Namespace, device: torch.device) -> float:
    """Median epoch time of the plain per-pair loop on the same problem and batch size."""
    x, labels, signatures = _problem(args, device)
    metric = BilinearMetric(args.dim, args.sig_dim).to(device)
    optimiser = torch.optim.Adam(metric.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    k = args.negatives
    pair_image = torch.arange(args.images, device=device).repeat_interleave(k + 1)
    pair_positive = (torch.arange(k + 1, device=device) == 0).repeat(args.images)

    def epoch() -> None:
        negatives = _random_negatives(labels, args.classes, k)
        pair_class = torch.cat([labels[:, None], negatives], 1).reshape(-1)
        for batch in torch.randperm(len(pair_image), device=device).split(args.batch_pairs):
            images, classes, positive = pair_image[batch], pair_class[batch], pair_positive[batch]
            feats, sigs = x[images], signatures[classes]
            d = metric.pair_distances(feats, sigs)
            err = (metric.embed(feats[positive]) - sigs[positive]).square().sum(-1)
            loss = metric_objective(d[positive], d[~positive], metric.b, err, BETA, 1.0, 0.1)
            optimiser.zero_grad(set_to_none=True)
            loss["loss"].backward()
            optimiser.step()

    return _times(args.epochs, device, epoch)


@torch.no_grad()
def pool_refresh(args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(seconds, peak MB) of :meth:`NegativePool.refresh` on pool_images × pool_classes pairs."""
    gen = torch.Generator().manual_seed(1)
    metric = BilinearMetric(args.dim, args.sig_dim).to(device)
    metric.W.copy_(torch.randn(args.dim, args.sig_dim, generator=gen) / args.dim**0.5)
    signatures = torch.rand(args.pool_classes, args.sig_dim, generator=gen).to(device)
    features = torch.randn(args.pool_images, args.dim, generator=gen).to(device)
    labels = torch.randint(0, args.pool_classes, (args.pool_images,), generator=gen).to(device)
    classes = torch.arange(args.pool_classes, device=device)
    pool = NegativePool(HardestMiner(args.negatives), memory_budget_mb=args.budget_mb)
    scorer = PoolScorer(metric, PairLogisticLoss(beta=BETA))  # as MetricZSLSystem's pool mines

    def run() -> None:
        pool.refresh(scorer, signatures, classes, features, labels, beta=BETA, epoch=1)

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
    return _timed_once(device, run), peak_mb


@torch.no_grad()
def evaluation_s(args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(float64, float32) seconds to score the problem's images against every class: the
    evaluation's :meth:`~src.models.classifier.ZSLClassifier.score` (float64 distances, which
    decide ties) against the float32 ``class_distances`` it replaced, chunk by chunk alike."""
    gen = torch.Generator().manual_seed(2)
    model = MetricZSLSystem(args.dim, args.sig_dim, init="ridge").to(device)
    model.metric.W.copy_(torch.randn(args.dim, args.sig_dim, generator=gen) / args.dim**0.5)
    exact = torch.rand(args.classes, args.sig_dim, generator=gen, dtype=torch.float64)
    model.register_buffer("signatures", exact.float().to(device), persistent=False)
    model.register_buffer("exact_signatures", exact.to(device), persistent=False)
    features = torch.randn(args.images, args.dim, generator=gen).to(device)

    def float32() -> None:
        for chunk in features.split(4096):
            model.class_distances(chunk)

    return (
        _times(args.epochs, device, lambda: model.score(features)),
        _times(args.epochs, device, float32),
    )


def _timed_once(device: torch.device, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start
