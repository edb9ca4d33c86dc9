"""Lightning callbacks of the framework."""

from src.callbacks.finite_guard import FiniteLossGuard, NonFiniteLossError
from src.callbacks.negative_pool import NegativePoolRefresh

__all__ = ["FiniteLossGuard", "NegativePoolRefresh", "NonFiniteLossError"]
