"""Choosing the epoch count and the trial from validation curves, and checking that choice.

Every rule reads the per-fold validation curves of trials (``fold_curves``: folds × epochs):
the mean curve over the folds, optionally smoothed by a centred moving average, chooses the
epoch (:func:`choose_epoch`) and the trial (:func:`choose_trial`; ties go to the earliest trial,
the defaults, and the shortest training). :func:`held_out_check` scores a rule on held-out
folds, and ``protocol.smoothing=auto`` chooses the window with it (:func:`selection_window`).
Validation data only.
"""

from __future__ import annotations

import math

import numpy as np


def smooth(curve: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over ``window`` epochs (truncated at the ends); 1: unchanged."""
    if window <= 1:
        return curve
    half = window // 2
    return np.array([np.nanmean(curve[max(0, i - half) : i + half + 1]) for i in range(len(curve))])


def choose_epoch(fold_curves: np.ndarray, window: int) -> tuple[int, float]:
    """(0-based best epoch, its score) of the folds' mean curve smoothed over ``window`` epochs.

    The first best epoch wins (the shortest training). Smoothing keeps an isolated spike of a
    noisy validation curve from choosing the epoch (and the trial).
    """
    curve = smooth(np.nanmean(fold_curves, axis=0), window)
    best = int(np.nanargmax(curve))
    return best, float(curve[best])


def best_of(fold_curves: list[np.ndarray], window: int) -> tuple[int, int, float]:
    """(trial index, 0-based epoch, score) of the best of several trials' fold curves; a tie
    goes to the earliest trial (the defaults come first)."""
    picks = [choose_epoch(curves, window) for curves in fold_curves]
    i = max(range(len(picks)), key=lambda k: (picks[k][1], -k))
    return i, picks[i][0], picks[i][1]


def choose_trial(trials: list[dict], window: int) -> dict:
    """The trial (``user_attrs`` records, in trial order) whose smoothed mean validation curve
    is best, with its epoch count, score and γ under ``window``; ties go to the earliest trial
    (the defaults come first) and the shortest training."""
    i, epoch, score = best_of([np.asarray(t["fold_curves"], dtype=float) for t in trials], window)
    trial, curves = trials[i], np.asarray(trials[i]["fold_curves"], dtype=float)
    gammas = np.asarray(trial["fold_gammas"], dtype=float)
    return {
        **trial,
        "trial": i,
        "score": score,
        "best_epoch": epoch + 1,
        "gamma": float(gammas[:, epoch].mean()),
        "fold_scores": [float(c) for c in curves[:, epoch]],
    }


def selection_window(trials: list[dict], setting: int | str) -> int:
    """``protocol.smoothing``: a fixed window, or ``auto``: the window (1 or 3 epochs) whose
    choices score best on held-out validation folds (:func:`held_out_check`; a tie keeps 1)."""
    if setting != "auto":
        return int(setting)
    scores = {w: held_out_check(trials, w) for w in (1, 3)}
    return 3 if scores[3] > scores[1] else 1


def held_out_check(trials: list[dict], window: int) -> float:
    """Mean held-out-fold score of choosing (trial, epoch) on the other folds with ``window``.

    For each fold f: among ``trials`` (their ``fold_curves``), choose the trial and epoch with the
    best smoothed mean curve over the folds other than f, then read fold f's raw value there.
    Validation data only: it tells whether a selection rule generalises across classes.
    """
    curves = [np.asarray(t["fold_curves"], dtype=float) for t in trials if "fold_curves" in t]
    if not curves or curves[0].shape[0] < 2:
        return math.nan
    scores = []
    for f in range(curves[0].shape[0]):
        i, epoch, _ = best_of([np.delete(c, f, axis=0) for c in curves], window)
        scores.append(curves[i][f, epoch])
    return float(np.mean(scores))
