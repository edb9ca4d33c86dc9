"""The metric (math) and the LightningModule around it (objective, optimiser, metrics)."""

from src.models.eszsl import ESZSLClassifier
from src.models.metric import BilinearMetric
from src.models.nearest_signature import NearestSignatureClassifier
from src.models.system import MetricZSLSystem

__all__ = ["BilinearMetric", "ESZSLClassifier", "MetricZSLSystem", "NearestSignatureClassifier"]
