"""One row's Optuna study, resumable from its storage: how it is opened, how each trial's
sampler is seeded, what its pruner is, and which of its trials count.

A study continues exactly where it stopped, even after ``kill -9``: trial i's setting is drawn by
a TPE sampler seeded from ``(seed, i)`` from the finished trials 0…i−1 alone
(:func:`trial_sampler`), and a trial a stopped process left running is closed as failed, which
TPE ignores (:func:`open_study`). The continued study then holds the same finished trials, in
the same order, as an uninterrupted one (:func:`finished_records`). The trials themselves run in
:func:`src.protocol.search.run_study`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from src.protocol.settings import PRUNER_CHOICES
from src.protocol.storage import StorageError, damage, damaged_storage, open_storage

#: TPE's random warm-up: trials drawn at random before TPE models the finished ones
STARTUP_TRIALS = 8
#: what a trial left running by a stopped process records when it is closed
STOPPED = "stopped: the process ended during this trial; the trial ran again"
#: the states of a finished trial: scored (COMPLETE) or diverged (PRUNED, with its ``error``)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def trial_sampler(seed: int, index: int, n_trials: int) -> optuna.samplers.TPESampler:
    """The sampler of a study's ``index``-th finished trial (0-based): TPE seeded from
    ``(seed, index)``, created afresh for that trial alone.

    Optuna's TPE reads the COMPLETE and PRUNED trials of the study, in trial order, and two
    random states of its own (its candidates' and its warm-up's RandomSampler), which advance
    with every draw. One sampler per trial, seeded from the trial's index among the finished
    trials, makes a trial's setting a function of ``(seed, index, the finished trials)`` alone:
    a protocol continued after a kill draws the settings an uninterrupted one would have.
    """
    entropy = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    return optuna.samplers.TPESampler(seed=entropy, n_startup_trials=min(STARTUP_TRIALS, n_trials))


#: the median pruner's patience: finished trials before it prunes, and the first steps (the
#: first fold's first epochs) it never prunes at (fold k's epochs count from k × max_epochs)
PRUNER_STARTUP_TRIALS, PRUNER_WARMUP_EPOCHS = 5, 2


def make_pruner(kind: str, n_trials: int) -> optuna.pruners.BasePruner:
    """``protocol.pruner``: ``none``, or ``median`` (Optuna's MedianPruner: stop a trial whose
    score at an epoch is below the median of the finished trials' scores at that epoch, after
    :data:`PRUNER_STARTUP_TRIALS` finished trials and past the first fold's first
    :data:`PRUNER_WARMUP_EPOCHS` epochs). It reads finished (COMPLETE) trials only, in the
    study's storage, so a continued or parallel protocol prunes exactly as an uninterrupted
    serial one."""
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=min(PRUNER_STARTUP_TRIALS, n_trials),
            n_warmup_steps=PRUNER_WARMUP_EPOCHS,
            interval_steps=1,
        )
    raise ValueError(f"protocol.pruner={kind!r} is invalid: use one of {list(PRUNER_CHOICES)}.")


def open_study(
    name: str,
    storage: Path | str,
    seed: int,
    n_trials: int,
    defaults: dict,
    pruner: str = "none",
    settings: dict | None = None,
) -> tuple[optuna.Study, int, int]:
    """(study, its finished trials, how many trials a stopped process had left running).

    ``storage``: a SQLite file, or a storage URL (:func:`storage_for`). ``settings``: the
    protocol's (:func:`~src.protocol.identity.protocol_settings`); a study left by a protocol with
    other settings is refused (:func:`check_study_settings`). A trial left
    RUNNING by a killed process is closed as FAIL (TPE reads COMPLETE and PRUNED trials only,
    so it is forgotten and its setting is drawn again, identically); the defaults are queued
    while no trial has finished (a kill inside the first trial used up the queued one).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # JournalFileOpenLock and friends are "experimental" in some optuna releases.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    url = storage if isinstance(storage, str) else f"sqlite:///{storage}"
    try:
        study = optuna.create_study(
            study_name=name,
            storage=open_storage(url),
            direction="maximize",
            load_if_exists=True,
            sampler=trial_sampler(seed, 0, n_trials),
            pruner=make_pruner(pruner, n_trials),
        )
    except Exception as error:
        if (reason := damage(error)) is None:
            raise
        raise StorageError(
            damaged_storage(url.removeprefix("sqlite:///"), reason, f"`{name}`")
        ) from None
    if settings is not None:
        check_study_settings(study, settings, url)
    stopped = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stopped:
        study._storage.set_trial_user_attr(trial._trial_id, "error", STOPPED)
        study.tell(trial.number, state=TrialState.FAIL)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    if not done and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.enqueue_trial(defaults)
    return study, done, len(stopped)


#: the study attribute that holds the settings of the protocol that created the study
SETTINGS_ATTR = "protocol_settings"


def check_study_settings(study: Any, settings: dict, storage: str) -> None:
    """A study in ``storage`` belongs to one protocol: the first to open it leaves its settings
    (:func:`~src.protocol.identity.protocol_settings`) on it; a protocol with other settings that
    opens it (the same run folder path pointed at the same shared storage after the folder was
    removed, or on another machine) is refused in one line naming the keys, as a changed
    continuation is."""
    from src.core.errors import ConfigError

    saved = study.user_attrs.get(SETTINGS_ATTR)
    if saved is None:
        study.set_user_attr(SETTINGS_ATTR, settings)
        return
    differ = sorted(k for k in set(saved) | set(settings) if saved.get(k) != settings.get(k))
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        raise ConfigError(
            f"protocol.storage={storage} already holds the study {study.study_name!r} of a "
            f"protocol with other settings ({shown}): continue that protocol with its own "
            "command, or use another protocol.storage or hydra.run.dir (a shared storage names "
            "each study after its run folder)."
        )


def finished_records(study: optuna.Study) -> list[dict]:
    """The records (``user_attrs``) of the study's scored trials (COMPLETE), in trial order."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [
        t.user_attrs
        for t in sorted(trials, key=lambda t: t.number)
        if "fold_gammas" in t.user_attrs
    ]
