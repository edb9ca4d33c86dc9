"""What every stage of one search reads and none changes: :class:`Inputs`, built once from the
run's config (its data modules, folds, searched rows, the configs a job trains with)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.core.env import config_dir
from src.protocol.identity import protocol_settings
from src.protocol.model_kinds import model_config, model_kinds
from src.protocol.settings import ProtocolSettings

log = logging.getLogger("src.protocol")
CONF = config_dir()  # the checkout's conf/, or the copy installed with the package


@dataclass
class Inputs:
    """One search's inputs: its seed, data and configs."""

    seed: int  # the search's seed (protocol.searches > 1: seed, seed + 1, …)
    data: Any  # the data modules by (split mode, fold, seed, preprocessing): DataModules
    folds: list[int]  # the validation folds that run
    specs: dict[str, tuple[str, Any]]  # searched row → (strategy, model config)
    model: DictConfig  # the metric's model config
    trainer: DictConfig
    pool: DictConfig | None  # the pool group (None: NegativePool's defaults)
    study_settings: dict  # the protocol's settings, kept with each study
    test_dm: Any  # the test data module (the first fold's splits, the default preprocessing)
    source: str  # the data's name in the report
    preprocessing: tuple[bool, bool, bool]  # (standardise, l2 features, l2 signatures)

    @classmethod
    def from_config(
        cls, cfg: DictConfig, settings: ProtocolSettings, data: Any = None, quiet: bool = False
    ) -> Inputs:
        """``data``: data modules to share (another search's); ``quiet``: a worker's or another
        search's inputs, which do not repeat the folds' note."""
        from src.protocol.training import DataModules

        data = data if data is not None else DataModules(cfg.data)
        folds = list(settings.folds) if data.has_folds else [1]
        if not data.has_folds and list(settings.folds) != [1] and not quiet:
            log.warning(
                "data=%s has one validation split: protocol.folds=%s runs as [1] "
                "(set protocol.folds=[1] to silence this)",
                _data_name(cfg.data),
                list(settings.folds),
            )
        test_dm = data.get("test", folds[0], int(cfg.seed), {})
        return cls(
            seed=int(cfg.seed),
            data=data,
            folds=folds,
            specs=searched_rows(settings, cfg.model),
            model=cfg.model,
            trainer=cfg.trainer,
            pool=cfg.get("pool"),
            study_settings=protocol_settings(cfg),
            test_dm=test_dm,
            source=test_dm.arrays.source,
            preprocessing=(test_dm.standardise, test_dm.l2_features, test_dm.l2_signatures),
        )

    def miner_cfg(self, strategy: str) -> DictConfig:
        """The miner config of ``strategy`` (``conf/miner/<strategy>.yaml``)."""
        return OmegaConf.load(CONF / "miner" / f"{strategy}.yaml")

    @property
    def data_cfg(self) -> DictConfig:
        return self.data.data_cfg


def searched_rows(settings: ProtocolSettings, metric_cfg: Any) -> dict[str, tuple[str, Any]]:
    """The protocol's searched rows, name → (strategy, model config): the strategies (with the
    metric), the trained references (``miner=all``) and, per ``protocol.objectives`` other than
    the metric, ``<objective>-<strategy>`` rows."""
    specs = {s: (s, metric_cfg) for s in settings.strategies}
    trained = model_kinds().trained
    for ref in settings.references:
        if ref in trained:
            specs[ref] = ("all", model_config(ref))
    for objective in settings.objectives:
        if objective != "metric":
            model = model_config(objective)
            specs.update({f"{objective}-{s}": (s, model) for s in settings.strategies})
    return specs


def _data_name(data_cfg: DictConfig) -> str:
    """The dataset's name in a message: the ``data=`` choice, else its datamodule's class."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get("data"))
    return str(data_cfg.get("_target_", "?")).rsplit(".", 1)[-1]
