"""The metric (math) and the LightningModule around it (objective, optimiser, metrics)."""

from src.models.metric import BilinearMetric
from src.models.system import MetricZSLSystem

__all__ = ["BilinearMetric", "MetricZSLSystem"]
