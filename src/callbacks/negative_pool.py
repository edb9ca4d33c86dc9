"""The callback that refreshes the hard-negative pool at the start of training epochs."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import torch
from torch import Tensor

from src.mining import MiningInputs, NegativeMiner, RandomMiner

log = logging.getLogger(__name__)


class NegativePoolRefresh(L.Callback):
    """Scores every (training image, seen class) pair and asks the miner for K negatives each.

    Epochs before ``miner.warmup_epochs`` use uniform random negatives, redrawn every epoch; then
    the pool is refreshed every ``miner.refresh_every`` epochs (never for a miner with
    ``refreshes = False``). Randomness comes from a generator seeded with ``seed`` and the epoch,
    so pools are reproducible and a resumed run draws the same pools. The pool is saved in
    checkpoints. Diagnostics of every refresh are logged under ``pool/``.

    Args:
        miner: the mining strategy.
        seed: the run seed.
        memory_budget_mb: bound on the memory used to score one chunk of images.
    """

    def __init__(self, miner: NegativeMiner, seed: int = 0, memory_budget_mb: float = 256.0):
        if memory_budget_mb <= 0:
            raise ValueError(
                f"callbacks.negative_pool.memory_budget_mb={memory_budget_mb} is invalid: "
                "it must be > 0."
            )
        self.miner, self.seed, self.memory_budget_mb = miner, seed, memory_budget_mb
        self._warmup_miner = RandomMiner(num_negatives=miner.num_negatives)
        self.pool: Tensor | None = None
        self.last_refresh_epoch: int | None = None

    # ---------------------------------------------------------------------------- schedule
    def is_refresh_epoch(self, epoch: int) -> bool:
        m = self.miner
        if self.pool is None:
            return True
        if epoch < m.warmup_epochs:
            return True
        return m.refreshes and (epoch - m.warmup_epochs) % m.refresh_every == 0

    def miner_for(self, epoch: int) -> NegativeMiner:
        return self._warmup_miner if epoch < self.miner.warmup_epochs else self.miner

    # ------------------------------------------------------------------------------- hooks
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self.miner.check_num_classes(len(trainer.datamodule.seen_classes))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if self.last_refresh_epoch != epoch and self.is_refresh_epoch(epoch):
            start = time.perf_counter()
            previous = self.pool
            pool, stats = self.refresh(pl_module, trainer.datamodule, epoch)
            # Kept on the training device; only checkpoints hold a host copy.
            self.pool, self.last_refresh_epoch = pool, epoch
            stats["pool/changed_fraction"] = changed_fraction(previous, self.pool)
            stats["pool/refresh_s"] = time.perf_counter() - start
            pl_module.log_dict(stats, on_step=False, on_epoch=True)
        pl_module.negative_pool = self.pool.to(pl_module.device)

    @torch.no_grad()
    def refresh(self, pl_module: L.LightningModule, datamodule: Any, epoch: int):
        """Build the pool of every training image; returns (pool, diagnostics)."""
        device = pl_module.device
        metric = pl_module.metric
        seen = datamodule.seen_classes.to(device)
        signatures = datamodule.signatures.to(device)[seen]
        features = datamodule.train_features
        local_labels = torch.searchsorted(seen, datamodule.train_labels.to(device))
        normed = torch.nn.functional.normalize(signatures, dim=1)
        similarity = normed @ normed.T
        threshold = float(metric.b)
        beta = float(getattr(pl_module.hparams, "beta", 1.0))
        miner = self.miner_for(epoch)
        generator = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + epoch)

        class_proj = metric.project_signatures(signatures)
        projection = metric.W @ metric.L.T
        chunks, pos_sum, neg_sum, wrong = [], 0.0, 0.0, 0
        rows = self.chunk_rows(len(seen))
        for start in range(0, len(features), rows):
            stop = start + rows
            x = features[start:stop].to(device, non_blocking=True)
            d = metric.distances_from_projections(x @ projection, class_proj)
            if not bool(torch.isfinite(d).all()):
                raise FloatingPointError(
                    f"non-finite distances when refreshing the negative pool at epoch {epoch}: "
                    "the model diverged (lower model.lr, standardise or normalise the features)."
                )
            inputs = MiningInputs(d, local_labels[start:stop], threshold, similarity, beta)
            local = miner.mine(inputs, generator)
            neg_d = d.gather(1, local)
            pos_sum += float(d.gather(1, inputs.positives[:, None]).sum())
            neg_sum += float(neg_d.sum())
            wrong += int((neg_d < threshold).sum())
            chunks.append(local)
        pool = seen[torch.cat(chunks)]
        n = len(features)
        stats = {
            "pool/mean_d_pos": pos_sum / n,
            "pool/mean_d_neg": neg_sum / pool.numel(),
            "pool/wrong_side_fraction": wrong / pool.numel(),
        }
        return pool, stats

    def chunk_rows(self, num_classes: int) -> int:
        """Images per scoring chunk so that about 6 n × S float32 buffers fit the budget."""
        per_row = 6 * 4 * max(num_classes, 1)
        return max(1, int(self.memory_budget_mb * 2**20 // per_row))

    # --------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        pool = None if self.pool is None else self.pool.cpu()
        return {"pool": pool, "last_refresh_epoch": self.last_refresh_epoch, "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pool = state_dict["pool"]
        self.last_refresh_epoch = state_dict["last_refresh_epoch"]
        # A resumed run continues the pools of the run it resumes.
        self.seed = state_dict.get("seed", self.seed)


def changed_fraction(previous: Tensor | None, current: Tensor) -> float:
    """Share of pool entries (image, class) that were not in the image's previous pool."""
    if previous is None or previous.shape != current.shape:
        return 1.0
    previous = previous.to(current.device)  # a pool restored from a checkpoint is on the host
    kept = (current[:, :, None] == previous[:, None, :]).any(-1)
    return float(1.0 - kept.float().mean())
