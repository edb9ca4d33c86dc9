"""Which process writes a job's files: Lightning's own rank (``rank_zero_only.rank``)."""

from __future__ import annotations

from lightning.pytorch.utilities import rank_zero_only


def is_rank_zero() -> bool:
    """Whether this process writes the job's files: always without DDP, rank 0 under DDP.

    Lightning sets the rank from the environment (``LOCAL_RANK``, ``SLURM_PROCID``…) at import,
    so it is known before the Trainer exists.
    """
    return getattr(rank_zero_only, "rank", 0) == 0
