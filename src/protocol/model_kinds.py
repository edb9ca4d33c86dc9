"""Which models the protocol can compare, read off ``conf/model/``: a new reference or objective
is its class and its YAML, no list to extend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from omegaconf import OmegaConf

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
        model = hydra.utils.get_class(OmegaConf.load(path)._target_)
        (trained if getattr(model, "trainable", True) else untrained).append(path.stem)
    return ModelKinds((*untrained, "untrained"), tuple(trained))
