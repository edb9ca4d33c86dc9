"""The negative pool: K negative classes per training image, its schedule and its refresh.

At the start of a refresh epoch every (training image, seen class) pair is scored with the
current model (a :class:`~src.mining.scorer.PairScorer`: the metric's ``D`` or a compatibility
model's ``−F``, a memory-bounded chunk of images at a time) and the strategy
(:class:`~src.mining.negative_miner.NegativeMiner`) picks K negatives per image. The Lightning side
(:class:`~src.callbacks.negative_pool.NegativePoolRefresh`) only calls
:meth:`NegativePool.refresh` at epoch start and hands the pool to the model.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import Tensor

from src.mining.negative_miner import MiningInputs, NegativeMiner, check_value
from src.mining.random_miner import RandomMiner
from src.mining.scorer import PairScorer

log = logging.getLogger(__name__)

#: a refresh that runs longer than this reports its progress (seconds between lines)
PROGRESS_EVERY_S = 5.0


class NegativePool:
    """Which K dataset classes serve as each training image's negatives, and when to redraw.

    Epochs before ``warmup_epochs`` use uniform random negatives, redrawn every epoch; then the
    pool is refreshed every ``refresh_every`` epochs with the strategy (only once for a strategy
    that ``draws_once``). Randomness comes from a generator seeded with ``seed`` and the epoch,
    so pools are reproducible and a resumed run draws the same pools.

    Args:
        miner: the mining strategy.
        seed: the run seed.
        refresh_every: epochs between two refreshes once mining has started.
        warmup_epochs: epochs of uniform random negatives first; ``None``: 1 for strategies
            that read the model (``miner.uses_model``), else 0.
        memory_budget_mb: bound on the memory used to score one chunk of images.
    """

    def __init__(
        self,
        miner: NegativeMiner,
        seed: int = 0,
        refresh_every: int = 1,
        warmup_epochs: int | None = None,
        memory_budget_mb: float = 256.0,
    ) -> None:
        if warmup_epochs is None:
            warmup_epochs = 1 if miner.uses_model else 0
        check_value("pool.refresh_every", refresh_every, refresh_every >= 1, "≥ 1")
        check_value("pool.warmup_epochs", warmup_epochs, warmup_epochs >= 0, "≥ 0")
        budget_ok = memory_budget_mb > 0
        check_value("pool.memory_budget_mb", memory_budget_mb, budget_ok, "> 0")
        self.miner, self.seed = miner, seed
        self.refresh_every, self.warmup_epochs = int(refresh_every), int(warmup_epochs)
        self.memory_budget_mb = float(memory_budget_mb)
        # A miner of every other class (num_negatives None: ``all``) warms up as itself.
        k = miner.num_negatives
        self._warmup_miner = miner if k is None else RandomMiner(num_negatives=k)
        self.negatives: Tensor | None = None  # image index → K dataset classes
        self.last_refresh_epoch: int | None = None

    # ---------------------------------------------------------------------------- schedule
    def is_refresh_epoch(self, epoch: int) -> bool:
        """Whether the pool is (re)drawn at the start of ``epoch``."""
        if self.negatives is None or epoch < self.warmup_epochs:
            return True
        if self.miner.draws_once:
            return False
        return (epoch - self.warmup_epochs) % self.refresh_every == 0

    def due(self, epoch: int) -> bool:
        """A refresh epoch whose pool is not drawn yet (a resumed epoch keeps its pool)."""
        return self.last_refresh_epoch != epoch and self.is_refresh_epoch(epoch)

    def miner_for(self, epoch: int) -> NegativeMiner:
        return self._warmup_miner if epoch < self.warmup_epochs else self.miner

    def chunk_rows(self, num_classes: int) -> int:
        """Images per scoring chunk so that about 6 n × S float32 buffers fit the budget."""
        per_row = 6 * 4 * max(num_classes, 1)
        return max(1, int(self.memory_budget_mb * 2**20 // per_row))

    # ----------------------------------------------------------------------------- refresh
    @torch.no_grad()
    def refresh(
        self,
        scorer: PairScorer,
        seen_signatures: Tensor,
        seen_classes: Tensor,
        features: Tensor,
        local_labels: Tensor,
        beta: float,
        epoch: int,
    ) -> dict[str, float]:
        """Draw the pool of every training image for ``epoch``; return its diagnostics.

        A strategy that reads the model (``miner.uses_model``) gets every (image, seen class)
        distance, and the diagnostics describe them: ``pool/mean_d_pos``, ``pool/mean_d_neg``
        and ``pool/wrong_side_fraction`` (negatives closer than the scorer's threshold: b for
        the metric, the margin for a ranking model). Model-free draws (random, random_fixed,
        correlation, all, warm-up epochs) skip the scoring, which would cost a third
        of a training epoch; they report ``pool/changed_fraction`` and ``pool/refresh_s``
        only, as every refresh does.

        Args:
            scorer: what scores the pairs (:class:`~src.mining.scorer.PairScorer`, e.g. the
                :class:`~src.models.metric.BilinearMetric`; its device is where the scoring
                runs).
            seen_signatures: signatures of the seen classes (S × k), on the scorer's device.
            seen_classes: their dataset indices (S), on the scorer's device.
            features: the training images (N × d), on any device.
            local_labels: each image's class as a column of ``seen_classes`` (N), on the
                scorer's device.
            beta: the loss's sharpness β (for loss-based strategies).
            epoch: the epoch the pool is for (seeds the generator).
        """
        start_time, last_report = time.perf_counter(), time.perf_counter()
        device = seen_signatures.device
        normed = torch.nn.functional.normalize(seen_signatures, dim=1)
        similarity = normed @ normed.T
        miner = self.miner_for(epoch)
        generator = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + epoch)
        chunks, pos_sum, neg_sum, wrong = [], 0.0, 0.0, 0
        rows, n = self.chunk_rows(len(seen_classes)), len(features)
        if miner.uses_model:
            scored = scorer.scored_chunks(features, seen_signatures, rows)
        else:  # the strategy reads the shape of the distance matrix only
            scored = ((s, torch.zeros(min(rows, n - s), len(seen_classes), device=device))
                      for s in range(0, n, rows))  # fmt: skip
        for start, d in scored:
            if miner.uses_model and not bool(torch.isfinite(d).all()):
                raise FloatingPointError(
                    f"non-finite distances when refreshing the negative pool at epoch {epoch}: "
                    "the model diverged (lower model.lr, standardise or normalise the features)."
                )
            labels = local_labels[start : start + rows]
            # b of the metric, or per image for a ranking model; model-free draws read none.
            threshold = scorer.thresholds(d, labels) if miner.uses_model else 0.0
            inputs = MiningInputs(d, labels, threshold, similarity, beta)
            local = miner.mine(inputs, generator)
            chunks.append(local)
            if miner.uses_model:
                neg_d = d.gather(1, local)
                pos_sum += float(d.gather(1, inputs.positives[:, None]).sum())
                neg_sum += float(neg_d.sum())
                wrong += int((neg_d < threshold).sum())
            if time.perf_counter() - last_report > PROGRESS_EVERY_S:
                last_report = time.perf_counter()
                done = min(start + rows, n)
                log.info(
                    "pool refresh (epoch %d): %d%% of %s images · %.0f s",
                    epoch, 100 * done // n, f"{n:,}", last_report - start_time,
                )  # fmt: skip
        previous, self.negatives = self.negatives, seen_classes[torch.cat(chunks)]
        self.last_refresh_epoch = epoch
        stats = {}
        if miner.uses_model:
            stats = {
                "pool/mean_d_pos": pos_sum / n,
                "pool/mean_d_neg": neg_sum / self.negatives.numel(),
                "pool/wrong_side_fraction": wrong / self.negatives.numel(),
            }
        stats["pool/changed_fraction"] = changed_fraction(previous, self.negatives)
        stats["pool/refresh_s"] = time.perf_counter() - start_time
        return stats

    # --------------------------------------------------------------------------- checkpoint
    def state_dict(self) -> dict[str, Any]:
        negatives = None if self.negatives is None else self.negatives.cpu()
        return {"pool": negatives, "last_refresh_epoch": self.last_refresh_epoch, "seed": self.seed}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.negatives = state_dict["pool"]
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
