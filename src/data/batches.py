"""Index-based batching: a batch is a set of image indices gathered from in-memory tensors."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler


class IndexBatchSampler(Sampler[Tensor]):
    """Yields whole batches of indices; shuffled from ``seed`` and the epoch, so it is resumable.

    Lightning calls :meth:`set_epoch` before every training epoch.
    """

    def __init__(self, num_items: int, batch_size: int, shuffle: bool, seed: int = 0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} is invalid: it must be ≥ 1.")
        self.num_items, self.batch_size, self.shuffle, self.seed = (
            num_items,
            batch_size,
            shuffle,
            seed,
        )
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.num_items // self.batch_size)

    def __iter__(self) -> Iterator[Tensor]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
            order = torch.randperm(self.num_items, generator=generator)
        else:
            order = torch.arange(self.num_items)
        yield from order.split(self.batch_size)


class IndexedImages(Dataset):
    """Images of one split; indexing with a tensor of positions returns the whole batch."""

    def __init__(self, features: Tensor, labels: Tensor) -> None:
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: Tensor) -> dict[str, Tensor]:
        return {"index": index, "features": self.features[index], "labels": self.labels[index]}


def index_loader(images: IndexedImages, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    """A DataLoader that gathers batches by index: no per-sample collation, no workers."""
    sampler = IndexBatchSampler(len(images), batch_size, shuffle, seed)
    return DataLoader(images, sampler=sampler, batch_size=None, num_workers=0)
