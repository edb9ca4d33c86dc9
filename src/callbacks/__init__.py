"""Lightning callbacks of the framework."""

from src.callbacks.checkpoint import RunCheckpoint
from src.callbacks.finite_guard import DivergedLossError, FiniteLossGuard, NonFiniteLossError
from src.callbacks.negative_pool import NegativePoolRefresh
from src.callbacks.run_record import ResumedOptimizerSettings, RunRecord

__all__ = [
    "DivergedLossError",
    "FiniteLossGuard",
    "NegativePoolRefresh",
    "NonFiniteLossError",
    "ResumedOptimizerSettings",
    "RunCheckpoint",
    "RunRecord",
]
