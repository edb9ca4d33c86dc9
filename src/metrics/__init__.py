"""ZSL/GZSL evaluation metrics: functional and stateful forms."""

from src.metrics.calibration import (
    ausuc,
    calibrated_predictions,
    choose_gamma,
    critical_gammas,
    gzsl_sweep,
    interval_gammas,
    per_class_topk,
    seen_unseen_curve,
)
from src.metrics.eval_scores import EvalScores
from src.metrics.per_class_accuracy import PerClassAccuracy
from src.metrics.zsl import harmonic_mean, mean_class_accuracy, per_class_top1, predict

__all__ = [
    "EvalScores",
    "PerClassAccuracy",
    "ausuc",
    "calibrated_predictions",
    "choose_gamma",
    "critical_gammas",
    "gzsl_sweep",
    "harmonic_mean",
    "interval_gammas",
    "mean_class_accuracy",
    "per_class_top1",
    "per_class_topk",
    "predict",
    "seen_unseen_curve",
]
