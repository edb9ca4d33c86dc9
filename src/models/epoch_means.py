"""Per-image means of a training epoch's loss parts, summed on the device.

A Lightning ``log`` call per value and step costs more than a small batch's arithmetic, so the
trained models add each step's parts (× its images) into one device tensor and log the means
once, at the end of the epoch (one host read per epoch).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor


class EpochMeans:
    """Sums of named per-image values over an epoch; :meth:`means` divides by the images.

    Example:
        >>> import torch
        >>> sums = EpochMeans(["train/loss"])
        >>> sums.add(torch.tensor([1.0]), 2); sums.add(torch.tensor([4.0]), 1)
        >>> {k: float(v) for k, v in sums.means().items()}
        {'train/loss': 2.0}
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.reset()

    def reset(self) -> None:
        self.sums: Tensor | None = None
        self.count = 0

    def add(self, values: Tensor, images: int) -> None:
        """Add one step's values (means over its ``images``), in the order of the names."""
        values = values.detach()
        if self.sums is None:
            self.sums = values.new_zeros(values.shape)
        self.sums.add_(values, alpha=images)
        self.count += images

    def means(self) -> dict[str, Tensor]:
        """Name → mean over the epoch's images; empty before the first step."""
        if self.sums is None:
            return {}
        return dict(zip(self.names, self.sums / self.count, strict=True))
