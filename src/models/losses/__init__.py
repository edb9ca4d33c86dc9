"""The losses of the pool-trained models, each a class chosen by ``_target_``
(``conf/model/loss/<name>.yaml``), so that any loss trains with any scorer and any miner.

A loss reads a :class:`ScoredBatch`: the *distances* of a batch's images to their own class and
to their K pool negatives (smaller = closer, as every scorer and miner reads them: the metric's
``D``, the bilinear compatibility's ``−F``), the images' attribute predictions and the scorer's
learned threshold. It returns its parts (``loss`` first), and says where a negative is on the
wrong side (:meth:`PoolLoss.thresholds`, where the pool's uncertainty miners peak) and which β
``miner=loss_weighted`` weighs with.

- :class:`PairLogisticLoss`: P2's generalised logistic pair loss around the threshold b
  (:mod:`src.models.objective`), plus the attribute-prediction term.
- :class:`ALELoss`, :class:`DeViSELoss`, :class:`SJELoss`: the GBU classics' ranking losses
  (:mod:`src.models.ranking`) on the compatibilities ``F = −distance``.

Its hyperparameters are flat keys of the model's config (``model.margin``, ``model.beta``): the
loss's YAML adds them (``# @package model``) and the system hands each loss the keys its
constructor names (:func:`build_loss`). A new loss is its class and its YAML.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from src.core.checks import locate
from src.models.losses.base import PoolLoss, ScoredBatch
from src.models.losses.pair_logistic import PairLogisticLoss
from src.models.losses.ranking import ALELoss, DeViSELoss, RankingLoss, SJELoss


def loss_class(spec: Mapping | str) -> type[PoolLoss]:
    """The class of ``model.loss`` (a ``{_target_: …}`` node, or the class's dotted path)."""
    target = str(spec if isinstance(spec, str) else spec.get("_target_"))
    try:
        cls = locate(target)
    except (ImportError, AttributeError) as error:
        raise ValueError(
            f"model.loss._target_={target!r} is invalid: it names no importable class "
            f"({type(error).__name__}: {error}). Choose a loss with model/loss=<name> "
            "(conf/model/loss/<name>.yaml)."
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, PoolLoss)):
        raise ValueError(
            f"model.loss._target_={target!r} is invalid: it must name a subclass of "
            "src.models.losses.PoolLoss."
        )
    return cls


def build_loss(spec: Mapping | str, flat: Mapping[str, Any]) -> PoolLoss:
    """The loss of ``spec`` with each parameter its constructor names taken from the model's
    flat keys ``flat`` (``model.margin``, …), unless ``spec`` sets it itself."""
    own = {} if isinstance(spec, str) else {k: v for k, v in spec.items() if k[0] != "_"}
    names = loss_parameter_names(spec)
    kwargs = {name: flat[name] for name in names if flat.get(name) is not None}
    return loss_class(spec)(**{**kwargs, **own})


def loss_parameter_names(spec: Mapping | str) -> set[str]:
    """The flat model keys the loss of ``spec`` reads: its constructor's named parameters."""
    parameters = inspect.signature(loss_class(spec).__init__).parameters.values()
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in parameters if p.name != "self" and p.kind in kinds}


__all__ = [
    "ALELoss",
    "DeViSELoss",
    "PairLogisticLoss",
    "PoolLoss",
    "RankingLoss",
    "SJELoss",
    "ScoredBatch",
    "build_loss",
    "loss_class",
    "loss_parameter_names",
]
