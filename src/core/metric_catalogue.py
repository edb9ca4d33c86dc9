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
    description: str
    higher_is_better: bool | None = True  # None: not a score (γ, tie counts)
    validated: bool = True  # a score to maximise on validation (selection_metric, a search)
    reported: bool = False  # a column of protocol.csv, with its bootstrap interval


def _not_a_score(name: str, short: str, description: str) -> MetricInfo:
    return MetricInfo(name, short, description, higher_is_better=None, validated=False)


CATALOGUE = (
    MetricInfo("zsl_acc", "ZSL", "per-class mean top-1 among unseen classes", reported=True),
    MetricInfo("zsl_top5", "top-5", "per-class mean top-5 among unseen classes"),
    MetricInfo("gzsl_s", "s", "GZSL accuracy of seen classes, all candidates", reported=True),
    MetricInfo("gzsl_u", "u", "GZSL accuracy of unseen classes", reported=True),
    MetricInfo("gzsl_H", "H", "harmonic mean of s and u", reported=True),
    MetricInfo("gzsl_s_cal", "s_cal", "s with calibrated stacking (γ)"),
    MetricInfo("gzsl_u_cal", "u_cal", "u with calibrated stacking (γ)"),
    MetricInfo("gzsl_H_cal", "H_cal", "H with calibrated stacking (γ)", reported=True),
    MetricInfo("ausuc", "AUSUC", "area under the seen-unseen curve", reported=True),
    _not_a_score("gamma", "γ", "the calibration γ (from validation)"),
    _not_a_score("ties", "ties", "images whose nearest class is a tie"),
    _not_a_score("zsl_ties", "ZSL ties", "the same among unseen classes"),
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
