"""Jobs whose strategy never mined: every epoch, or the selected one, in the pool's warm-up.

A strategy that reads the model (``hardest``, ``uncertainty``…) draws uniform random negatives
for its first ``pool.warmup_epochs`` epochs (1 by default). A job that stops within them (a
1-epoch sweep) reports random negatives' numbers under the strategy's name; in
``split_mode=val`` the epoch selected on validation may lie within them too. ``metrics.json``
records ``epoch/last``, ``epoch/selected`` and ``epoch/warmup`` (0-based epochs, as in
``csv/metrics.csv``); :func:`warmup_status` reads them for the sweep's lines and summary
(:mod:`src.sweeps.progress`) and for :mod:`src.report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WARMUP_ONLY = "warm-up only"
SELECTED_IN_WARMUP = "selected in warm-up"
#: what the two statuses mean, for the notes under a table
MEANING = {
    WARMUP_ONLY: (
        "every epoch it trained drew uniform random negatives (the pool's random warm-up, "
        "pool.warmup_epochs): its numbers are random negatives', not its strategy's; "
        "train for more epochs than the warm-up"
    ),
    SELECTED_IN_WARMUP: (
        "the epoch selected on validation lies in the pool's random warm-up "
        "(pool.warmup_epochs): the reported checkpoint never trained on mined negatives"
    ),
}


def warmup_status(metrics: Mapping[str, Any]) -> str | None:
    """:data:`WARMUP_ONLY`, :data:`SELECTED_IN_WARMUP` or ``None`` for a job's metrics."""
    warmup, last = metrics.get("epoch/warmup"), metrics.get("epoch/last")
    selected = metrics.get("epoch/selected")
    if not warmup or last is None:
        return None
    if last < warmup:
        return WARMUP_ONLY
    if selected is not None and selected < warmup:
        return SELECTED_IN_WARMUP
    return None


def warmup_notes(jobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per status found among ``jobs`` (label → metrics), naming its jobs."""
    found: dict[str, list[str]] = {}
    for label, metrics in jobs.items():
        status = warmup_status(metrics)
        if status is not None:
            found.setdefault(status, []).append(label)
    return [
        f"{status.capitalize()}: {'; '.join(labels)}: {MEANING[status]}."
        for status, labels in found.items()
    ]
