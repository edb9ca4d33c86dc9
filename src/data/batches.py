"""Index-based batching: a batch is a set of image indices gathered from in-memory tensors.

Multi-process (DDP) runs shard here, not in Lightning: every batch of the single-process order
is split into ``world_size`` near-equal slices and rank ``r`` yields the ``r``-th. So at each
step the processes together see exactly the batch one process would see: every image once per
epoch (training) or once per evaluation (nothing duplicated, nothing dropped), and the same
number of steps on every rank. DDP averages the ranks' gradients, which equals the gradient of
the whole batch when the slices are equally large and the loss is a mean over images (the
metric objective is): a run on W processes follows the single-process run with the same
``batch_size`` and seed, up to float rounding. ``data.batch_size`` is therefore the *global*
batch, whatever the number of processes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def distributed_shard() -> tuple[int, int]:
    """(rank, world size) of this process: torch.distributed's when initialised, else (0, 1)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class IndexBatchSampler(DistributedSampler):
    """Yields whole batches of indices; shuffled from ``seed`` and the epoch, so it is resumable.

    Lightning calls :meth:`set_epoch` before every training epoch. With ``world_size`` > 1 the
    sampler yields this rank's slice of every batch (see the module docstring); a last batch
    smaller than ``world_size`` is merged into the one before it, so that no slice is empty.
    The batch order depends on ``seed`` and the epoch only, never on the number of processes.

    It is a :class:`~torch.utils.data.DistributedSampler` (without that class's own sharding)
    only so that Lightning, which wraps every other sampler in a ``DistributedSamplerWrapper``
    under DDP (``use_distributed_sampler``), leaves it as it is.

    Args:
        num_items: number of images.
        batch_size: images per (global) batch.
        shuffle: a new random order every epoch; else the images in order.
        seed: seed of the order.
        rank, world_size: this process and the number of processes; ``None``: from
            :mod:`torch.distributed` when it is initialised (as under Lightning DDP, where the
            loaders are built after the process group), else a single process.
    """

    def __init__(
        self,
        num_items: int,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: it must be ≥ 1.")
        detected_rank, detected_world = distributed_shard()
        rank = detected_rank if rank is None else rank
        world_size = detected_world if world_size is None else world_size
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank={rank}, world_size={world_size} is invalid.")
        if 0 < num_items < world_size:
            raise ValueError(
                f"{num_items} images cannot be shared among {world_size} processes: every "
                "process needs at least one image per batch; use fewer devices."
            )
        self.num_items, self.batch_size, self.shuffle, self.seed = (
            num_items,
            batch_size,
            shuffle,
            seed,
        )
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        # The attributes a DistributedSampler is expected to have.
        self.num_replicas, self.drop_last = world_size, False
        self.num_samples = self.total_size = num_items

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        batches = -(-self.num_items // self.batch_size)
        if batches > 1 and self.num_items % self.batch_size and self._small_last_batch():
            batches -= 1
        return batches

    def _small_last_batch(self) -> bool:
        return self.num_items % self.batch_size < self.world_size

    def global_batches(self) -> list[Tensor]:
        """The batches of this epoch, as one process takes them (before sharding)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.arange(self.num_items)
        batches = list(order.split(self.batch_size))
        if len(batches) > 1 and len(batches[-1]) < self.world_size:
            batches[-2:] = [torch.cat(batches[-2:])]
        return batches

    def __iter__(self) -> Iterator[Tensor]:
        for batch in self.global_batches():
            if self.world_size == 1:
                yield batch
            else:
                yield batch.tensor_split(self.world_size)[self.rank]


class IndexedImages(Dataset):
    """Images of one split; indexing with a tensor of positions returns the whole batch."""

    def __init__(self, features: Tensor, labels: Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        return {"index": index, "features": self.features[index], "labels": self.labels[index]}

    def to(self, device: torch.device) -> IndexedImages:
        """The same images held on ``device``: batches are then gathered there, no copies."""
        return IndexedImages(self.features.to(device), self.labels.to(device))


def index_loader(images: IndexedImages, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A DataLoader that gathers batches by index: no per-sample collation, no workers.

    Under DDP it yields this process's slice of every batch (:class:`IndexBatchSampler`).
    """
    sampler = IndexBatchSampler(len(images), batch_size, shuffle, seed)
    return DataLoader(images, sampler=sampler, batch_size=None, num_workers=0)
