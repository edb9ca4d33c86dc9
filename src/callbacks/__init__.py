"""Lightning callbacks of the framework."""

from src.callbacks.negative_pool import NegativePoolRefresh

__all__ = ["NegativePoolRefresh"]
