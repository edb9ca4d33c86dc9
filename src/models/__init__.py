"""The models: the metric (math) and its LightningModule, the bilinear compatibility of the
ranking methods (ALE, DeViSE, SJE) and its LightningModule, and the closed-form references."""

from src.models.compatibility import BilinearCompatibility
from src.models.compatibility_system import CompatibilityZSLSystem
from src.models.eszsl import ESZSLClassifier
from src.models.metric import BilinearMetric
from src.models.nearest_signature import NearestSignatureClassifier
from src.models.sae import SAEClassifier
from src.models.system import MetricZSLSystem

__all__ = [
    "BilinearCompatibility",
    "BilinearMetric",
    "CompatibilityZSLSystem",
    "ESZSLClassifier",
    "MetricZSLSystem",
    "NearestSignatureClassifier",
    "SAEClassifier",
]
