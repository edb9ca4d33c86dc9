"""``random_fixed``: uniform negatives drawn once before training and kept (P2's baseline)."""

from __future__ import annotations

from src.mining.random_miner import RandomMiner


class RandomFixedMiner(RandomMiner):
    """A :class:`RandomMiner` whose first pool is never refreshed."""

    draws_once = True
