"""Every value an evaluation logs, declared once: its name, how tables show it, whether higher
is better, whether it is a validation score a search may maximise, and whether the protocol
reports it with an interval.

The lists the rest of the code needs are read from here (:func:`validation_metrics`,
:data:`REPORTED`, :func:`short_name`); a test checks that
:func:`src.metrics.gzsl.gzsl_results` logs exactly these names, so a metric added there and not
here fails at once. Imports nothing (the commands' ``--help`` stays fast).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """One logged value (``<split>/<name>``)."""

    name: str  # as gzsl_results names it
    short: str  # in tables and plots
    higher_is_better: bool | None  # None: not a score (γ, tie counts)
    validated: bool  # a score to maximise on validation (selection_metric, a search)
    reported: bool = False  # a column of protocol.csv, with its bootstrap interval
    description: str = ""


CATALOGUE = (
    MetricInfo("zsl_acc", "ZSL", True, True, True, "per-class mean top-1 among unseen classes"),
    MetricInfo("zsl_top5", "top-5", True, True, False, "per-class mean top-5 among unseen"),
    MetricInfo("gzsl_s", "s", True, True, True, "GZSL accuracy of seen classes, all candidates"),
    MetricInfo("gzsl_u", "u", True, True, True, "GZSL accuracy of unseen classes"),
    MetricInfo("gzsl_H", "H", True, True, True, "harmonic mean of s and u"),
    MetricInfo("gzsl_s_cal", "s_cal", True, True, False, "s with calibrated stacking (γ)"),
    MetricInfo("gzsl_u_cal", "u_cal", True, True, False, "u with calibrated stacking (γ)"),
    MetricInfo("gzsl_H_cal", "H_cal", True, True, True, "H with calibrated stacking (γ)"),
    MetricInfo("ausuc", "AUSUC", True, True, True, "area under the seen-unseen curve"),
    MetricInfo("gamma", "γ", None, False, False, "the calibration γ (from validation)"),
    MetricInfo("ties", "ties", None, False, False, "images whose nearest class is a tie"),
    MetricInfo("zsl_ties", "ZSL ties", None, False, False, "the same among unseen classes"),
)
BY_NAME = {metric.name: metric for metric in CATALOGUE}
#: the metrics protocol.csv reports (``test/<name>``), in its column order
REPORTED = tuple(metric.name for metric in CATALOGUE if metric.reported)


def validation_metrics() -> tuple[str, ...]:
    """``val/<name>`` of every score a run may be selected on."""
    return tuple(f"val/{metric.name}" for metric in CATALOGUE if metric.validated)


def short_name(key: str) -> str:
    """A metric's name in tables: ``test/gzsl_H`` → ``H``."""
    return BY_NAME[key.split("/", 1)[-1]].short
