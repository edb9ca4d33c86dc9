"""Which models the protocol can compare, read off ``conf/model/``: a new reference or objective
is its class and its YAML, no list to extend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.core.env import config_dir

CONF = config_dir()  # the checkout's conf/, or the copy installed with the package


@dataclass(frozen=True)
class ModelKinds:
    """The models ``conf/model/`` offers, by what the protocol does with them (read off each
    option's class, so a new model is one class and one YAML): ``untrained`` references are
    evaluated once (their own grid chosen on validation; the metric at 0 epochs is
    ``untrained``); ``trained`` ones (ALE, DeViSE, SJE) are searched and refitted with every
    seen class negative, and are the objectives the strategies can be crossed with."""

    untrained: tuple[str, ...]
    trained: tuple[str, ...]

    @property
    def references(self) -> tuple[str, ...]:
        return (*self.untrained, *self.trained)

    @property
    def objectives(self) -> tuple[str, ...]:
        return ("metric", *self.trained)


@cache
def model_kinds(conf_dir: Path = CONF) -> ModelKinds:
    """The :class:`ModelKinds` of ``<conf_dir>/model/*.yaml``."""
    import hydra

    untrained, trained = [], []
    for path in sorted((conf_dir / "model").glob("*.yaml")):
        if path.stem == "metric":  # the method itself; at 0 epochs, the `untrained` reference
            continue
        model = hydra.utils.get_class(model_config(path.stem, conf_dir)._target_)
        (trained if getattr(model, "trainable", True) else untrained).append(path.stem)
    return ModelKinds((*untrained, "untrained"), tuple(trained))


def model_config(name: str, conf_dir: Path = CONF) -> DictConfig:
    """``<conf_dir>/model/<name>.yaml`` composed as Hydra composes ``model=<name>``: the entries
    of its defaults list in order, ``_self_`` (implicitly last) and its sub-group options
    (``loss: <option>``: ``model/loss/<option>.yaml``, under ``model.loss`` unless its header
    says ``# @package model``). A test checks it against Hydra's composition."""
    own = OmegaConf.load(conf_dir / "model" / f"{name}.yaml")
    defaults = list(own.pop("defaults", None) or [])
    if "_self_" not in defaults:
        defaults.append("_self_")
    parts = []
    for entry in defaults:
        if entry == "_self_":
            parts.append(own)
            continue
        ((group, option),) = dict(entry).items()
        path = conf_dir / "model" / group / f"{option}.yaml"
        node = OmegaConf.load(path)
        header = path.read_text().split("\n", 1)[0].replace(" ", "")
        parts.append(node if header == "#@packagemodel" else OmegaConf.create({group: node}))
    return OmegaConf.merge(*parts)
