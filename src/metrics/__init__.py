"""ZSL/GZSL evaluation: math and metric state only (files are written by ``src.evaluation``)."""

from src.metrics.ausuc import ausuc, seen_unseen_curve
from src.metrics.calibration import (
    choose_gamma,
    critical_gammas,
    curve_gammas,
    gzsl_sweep,
    interval_gammas,
)
from src.metrics.gzsl import Evaluation, GZSLMetrics, gzsl_results
from src.metrics.per_class import per_class_rows, zsl_confusion
from src.metrics.scores import GZSLScores, split_by_class
from src.metrics.ties import TIE_RTOL, TIE_RTOL_F64
from src.metrics.zsl import (
    calibrated_predictions,
    harmonic_mean,
    mean_class_accuracy,
    per_class_credit,
    per_class_nearest,
    per_class_top1,
    per_class_topk,
    predict,
)

__all__ = [
    "TIE_RTOL",
    "TIE_RTOL_F64",
    "Evaluation",
    "GZSLMetrics",
    "GZSLScores",
    "ausuc",
    "calibrated_predictions",
    "choose_gamma",
    "critical_gammas",
    "curve_gammas",
    "gzsl_results",
    "gzsl_sweep",
    "harmonic_mean",
    "interval_gammas",
    "mean_class_accuracy",
    "per_class_credit",
    "per_class_nearest",
    "per_class_rows",
    "per_class_top1",
    "per_class_topk",
    "predict",
    "seen_unseen_curve",
    "split_by_class",
    "zsl_confusion",
]
