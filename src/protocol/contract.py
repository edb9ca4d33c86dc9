"""What the protocol's stages read from the run they belong to: :class:`ProtocolRun`, the typed
contract that :class:`~src.protocol.pipeline.Protocol` fulfils (every attribute set in its
``__init__``, the results empty until their stage runs). The stage modules (references,
extension, verdicts, the report) take a ``ProtocolRun``; none imports the pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from omegaconf import DictConfig

from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Workspace


@runtime_checkable
class ProtocolRun(Protocol):
    """One search of a protocol run: its settings and data, and each stage's results."""

    # ------------------------------------------------------------------ set up at the start
    cfg: DictConfig  # the run's whole config (data, model, pool, trainer, protocol, seed)
    settings: ProtocolSettings  # protocol.*, typed
    folder: Path  # this search's folder (the run folder, or searches/seed<k>/)
    workspace: Workspace  # where each step's result is saved
    data: Any  # the data modules by (split mode, fold, seed, preprocessing)
    folds: list[int]  # the validation folds that run
    specs: dict[str, tuple[str, Any]]  # searched row → (strategy, model config)
    test_dm: Any  # the test data module (fold 1's splits, the default preprocessing)
    source: str  # the data's name in the report
    preprocessing: tuple[bool, bool, bool]  # (standardise, l2 features, l2 signatures)
    where: str | None  # a worker's task, named in its progress lines
    replicas: dict[int, Any]  # the other searches (protocol.searches > 1), by seed

    # ----------------------------------------------------------- each stage's results
    refs: dict[str, dict]  # the untrained references' saved results
    trials: dict[str, list[dict]]  # each row's finished trials
    pruned: dict[str, int]  # each study's pruned trials
    window: int  # the smoothing window that chose the epochs
    chosen: dict[str, dict]  # each row's choice (setting, epochs, γ, curves)
    best: str  # the strategy chosen on validation
    pairs: list[tuple[str, str]]  # the comparisons the verdicts state
    runs: dict[str, list[dict]]  # each row's test runs (searches × seeds)
    comparisons: list[dict]  # comparisons.csv's records

    def progress(self, message: str) -> None: ...

    def next_stage(self, title: str) -> None: ...

    def context(self, name: str | None = None) -> Any: ...

    def miner_cfg(self, name: str) -> DictConfig: ...

    def search(self, name: str) -> list[dict]: ...

    def refit(
        self, name: str, strategy: str, chosen: dict, model: DictConfig, seeds: Any = None
    ) -> list[dict]: ...
