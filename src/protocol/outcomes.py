"""What each stage of the protocol returns: one dataclass per stage's result.

The stages (:mod:`~src.protocol.references`, :mod:`~src.protocol.search`,
:mod:`~src.protocol.extend`, :mod:`~src.protocol.refit`, :mod:`~src.protocol.verdicts`, the
report) are functions of ``(settings, workspace, inputs, …)`` that return these. The results a
step saves in the run folder (a reference, an extension, a refit's metrics) keep the JSON they
always had, so folders written by earlier versions still continue: :meth:`to_json` /
:meth:`from_json` are that format.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ReferenceResult:
    """An untrained reference (nearest signature, ESZSL, SAE, the untrained metric): its
    preprocessing and own hyper-parameters chosen on validation, then one test evaluation."""

    val: list[dict]  # the validation metrics of the chosen option, per fold
    gamma: float  # the calibration γ, the folds' mean val/gamma
    val_score: float  # the chosen option's mean validation score
    data: dict[str, bool]  # the chosen preprocessing
    model: dict[str, Any]  # the chosen own hyper-parameters (one-value lists; {} for none)
    searched: list[dict]  # every option tried: data, model, val_score
    test: dict[str, float]  # the test metrics

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> ReferenceResult:
        """A saved ``references/<name>.json`` (older ones lack ``model`` and ``searched``)."""
        return cls(
            val=saved["val"],
            gamma=float(saved["gamma"]),
            val_score=float(saved["val_score"]),
            data=saved.get("data", {}),
            model=saved.get("model", {}),
            searched=saved.get("searched", []),
            test=saved["test"],
        )


@dataclass
class SearchResult:
    """One searched row's study on the validation folds."""

    trials: list[dict]  # the finished (scored) trials' records, in trial order
    pruned: int  # the trials ``protocol.pruner`` stopped


@dataclass
class Choice:
    """A searched row's chosen trial and epoch count, on validation (its record's fields, with
    the extension's when the epoch cap chose the epoch)."""

    values: dict[str, Any]  # the setting (``data.*``, ``model.*``, ``miner.*``)
    trial: int  # its index among the finished trials
    score: float  # the (smoothed) mean validation score at the chosen epoch
    best_epoch: int  # the chosen epoch count
    gamma: float  # the folds' mean γ at that epoch
    fold_scores: list[float]  # each fold's score there
    curve: list[float]  # the mean validation curve over the folds
    fold_curves: list[list[float]] = field(default_factory=list)
    fold_gammas: list[list[float]] = field(default_factory=list)
    defaults_curve: list[float] = field(default_factory=list)  # the first trial's (defaults)
    epoch_cap: int = 0  # the last epoch cap its validation runs had
    limit_hit: bool = False  # the chosen epoch is the cap at protocol.max_epochs_limit

    def updated(self, record: dict) -> Choice:
        """This choice with the fields of a scored setting's ``record`` (an extension)."""
        names = {f.name for f in dataclasses.fields(self)}
        return dataclasses.replace(self, **{k: v for k, v in record.items() if k in names})

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, saved: dict) -> Choice:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})


@dataclass
class Chosen:
    """Every searched row's choice in one search, and the smoothing window that chose them."""

    window: int
    choices: dict[str, Choice]


@dataclass
class SearchOutcome:
    """One of ``protocol.searches`` independent searches: its studies and choices."""

    seed: int
    studies: dict[str, SearchResult]  # each searched row's study
    chosen: Chosen

    @property
    def trials(self) -> dict[str, list[dict]]:
        return {name: study.trials for name, study in self.studies.items()}


@dataclass
class RowRefits:
    """A row refitted on trainval: its test metrics per search, one dict per seed."""

    name: str
    kind: str  # tuned | reference | ablation
    per_search: list[list[dict]]

    @property
    def runs(self) -> list[dict]:
        return [run for runs in self.per_search for run in runs]


@dataclass
class Verdicts:
    """The table's rows with their intervals and ``same_as``, and ``comparisons.csv``'s records."""

    rows: list[dict]
    comparisons: list[dict]


@dataclass
class ProtocolResult:
    """Everything the report reads: the rows and each stage's results."""

    rows: list[dict]  # protocol.csv's rows, intervals included
    refs: dict[str, ReferenceResult]
    searches: list[SearchOutcome]  # the run's own seed first
    scores: dict[str, float]  # each searched row's mean validation score over the searches
    best: str  # the strategy chosen on validation
    pairs: list[tuple[str, str]]  # the comparisons the verdicts state, besides the defaults
    runs: dict[str, list[dict]]  # each row's test runs (searches × seeds)
    comparisons: list[dict]  # comparisons.csv's records

    @property
    def chosen(self) -> dict[str, Choice]:
        """The first search's choices (the settings protocol.md lists)."""
        return self.searches[0].chosen.choices

    @property
    def window(self) -> int:
        return self.searches[0].chosen.window
