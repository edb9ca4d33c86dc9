"""ZSL/GZSL evaluation metrics: functional and stateful forms."""

from src.metrics.per_class_accuracy import PerClassAccuracy
from src.metrics.zsl import harmonic_mean, mean_class_accuracy, per_class_top1, predict

__all__ = ["PerClassAccuracy", "harmonic_mean", "mean_class_accuracy", "per_class_top1", "predict"]
