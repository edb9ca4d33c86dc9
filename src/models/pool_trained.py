"""The shared part of the trained systems, one per scorer (the metric, the bilinear
compatibility): what every model trained on the negative pool does the same way.

A system is a scorer (its subclass) and a loss (:mod:`src.models.losses`, chosen by
``model.loss._target_``): any loss trains with any scorer and any miner. The base holds the
loss, the training step, the pool's scorer (the scorer's distances, the loss's wrong side),
initialisation from the training images at ``fit`` (a checkpoint restored after ``setup``
overwrites it), the epoch means of the training log, the learning rate's default by
initialisation, weight decay towards the initialisation (``model.weight_decay_to=init``) or
Adam's own (``zero``). A subclass declares what differs: :meth:`scored_batch`,
:meth:`initialise_from`, :meth:`auto_lr`, :meth:`decayed_parameters`,
:meth:`undecayed_parameters`, and its part of the protocol's search (:meth:`search_space`,
:meth:`default_params`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

from src.core.checks import is_number
from src.models.classifier import ZSLClassifier
from src.models.epoch_means import EpochMeans
from src.models.losses import PoolLoss, ScoredBatch, build_loss, loss_class, loss_parameter_names
from src.models.losses.base import check_value

DECAY_TARGETS = ("init", "zero")


def loss_spec(loss: Any, default: type[PoolLoss]) -> dict[str, Any]:
    """``model.loss`` as the plain ``{"_target_": …, …}`` a checkpoint keeps: from a config
    node, a loss class, its dotted path, or None (``default``)."""
    if loss is None:
        loss = default
    if isinstance(loss, type):  # the package's name for its own losses, as the YAMLs write it
        import src.models.losses as losses

        public = getattr(losses, loss.__name__, None) is loss
        module = losses.__name__ if public else loss.__module__
        return {"_target_": f"{module}.{loss.__qualname__}"}
    if isinstance(loss, str):
        return {"_target_": loss}
    if isinstance(loss, PoolLoss):
        raise ValueError(
            "model.loss is a built loss: give its config ({_target_: …}) or its class, so that "
            "checkpoints can rebuild it (a model YAML sets `_recursive_: false` for this)."
        )
    if isinstance(loss, Mapping) and "_target_" in loss:
        from omegaconf import DictConfig, OmegaConf

        return dict(OmegaConf.to_container(loss) if isinstance(loss, DictConfig) else loss)
    raise ValueError(
        f"model.loss={loss!r} is invalid: it must be a loss config with a _target_ "
        "(choose one with model/loss=<name>, conf/model/loss/<name>.yaml)."
    )


def check_shared_values(
    feature_dim: int,
    signature_dim: int,
    inits: tuple[str, ...],
    lr: Any,
    weight_decay: Any,
    weight_decay_to: Any,
    ridge: Any,
    init: Any,
) -> None:
    """One line naming the first invalid value among those every trained system takes."""
    check_value(
        "lr", lr, lr is None or (is_number(lr) and lr > 0), "> 0, or null for the default by init"
    )
    check_value("weight_decay", weight_decay, is_number(weight_decay) and weight_decay >= 0, "≥ 0")
    check_value(
        "weight_decay_to",
        weight_decay_to,
        weight_decay_to in DECAY_TARGETS,
        f"one of {DECAY_TARGETS}",
    )
    check_value("ridge", ridge, is_number(ridge) and ridge >= 0, "≥ 0")
    check_value("init", init, init in inits, f"one of {inits}")  # fmt: skip
    if init == "identity" and feature_dim != signature_dim:
        raise ValueError(
            f"model.init=identity needs feature_dim == signature_dim, but the data has "
            f"feature_dim={feature_dim}, signature_dim={signature_dim}: use model.init=ridge."
        )


class PoolScorer:
    """The pool's :class:`~src.mining.scorer.PairScorer` of a system: its scorer's distances,
    chunk by chunk, and its loss's wrong side (:meth:`~src.models.losses.PoolLoss.thresholds`)."""

    def __init__(self, scorer: torch.nn.Module, loss: PoolLoss) -> None:
        self.scorer, self.loss = scorer, loss

    def scored_chunks(
        self, features: Tensor, signatures: Tensor, rows: int
    ) -> Iterator[tuple[int, Tensor]]:
        return self.scorer.scored_chunks(features, signatures, rows)

    def thresholds(self, distances: Tensor, positives: Tensor) -> float | Tensor:
        return self.loss.thresholds(distances, positives, getattr(self.scorer, "b", None))


class PoolTrainedSystem(ZSLClassifier):
    """A scorer trained with a loss on (image, positive, pool negatives) batches; see the
    module. Subclasses call :meth:`set_loss` in ``__init__`` and define :attr:`scorer`."""

    #: Adam's learning rate by initialisation when ``model.lr`` is null
    AUTO_LR: ClassVar[dict[str, float]] = {}
    #: the loss when ``model.loss`` is not given
    DEFAULT_LOSS: ClassVar[type[PoolLoss]]

    @property
    def scorer(self) -> torch.nn.Module:
        """The scorer module (a property: a second attribute would save its weights twice)."""
        raise NotImplementedError

    def set_loss(self, spec: Mapping, loss_params: Mapping[str, Any]) -> None:
        """Build the loss from ``spec`` and the model's flat keys, and the epoch means it logs
        (its parts, and the scorer's threshold when the loss trains one)."""
        unused = sorted(set(loss_params) - loss_parameter_names(spec))
        if unused:
            cls = loss_class(spec).__name__
            raise ValueError(
                f"model.{unused[0]} is not a parameter of the loss {cls} "
                f"(model.loss._target_={spec['_target_']}): remove it, or choose a loss that "
                "reads it (model/loss=<name>)."
            )
        self.loss = build_loss(spec, loss_params)
        names = [*self.loss.parts, *(["threshold"] if self.loss.needs_threshold else [])]
        self._epoch_means = EpochMeans([f"train/{name}" for name in names])
        self.negative_pool: Tensor | None = None

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit":  # a checkpoint restored after setup overwrites this initialisation
            dm = self.trainer.datamodule
            self.initialise_from(dm.train_features, dm.train_labels)

    def init_kind(self) -> str:
        """``model.init``, with ``auto`` resolved from the datamodule: identity when its
        features are signature-space vectors, else ridge."""
        if self.hparams.init != "auto":
            return self.hparams.init
        datamodule = self._trainer.datamodule if self._trainer is not None else None
        in_space = datamodule is not None and datamodule.features_in_signature_space
        return "identity" if in_space else "ridge"

    def wrong_classes(self, labels: Tensor) -> Tensor:
        """One seen class other than its own per image (seeded, the same draw every run):
        the negatives a learned threshold b starts between the positives and."""
        generator = torch.Generator().manual_seed(0)
        seen = self.seen_classes.cpu()
        offset = torch.randint(1, len(seen), (len(labels),), generator=generator)
        return seen[(torch.searchsorted(seen, labels.cpu()) + offset) % len(seen)]

    # ------------------------------------------------------------ what a scorer declares
    def scored_batch(self, features: Tensor, labels: Tensor, negatives: Tensor) -> ScoredBatch:
        """The loss's view of a batch: distances to the own class and the pool negatives."""
        raise NotImplementedError

    def initialise_from(self, features: Tensor, labels: Tensor) -> None:
        """Set the weights from the training images and their labels (and keep the start)."""
        raise NotImplementedError

    def auto_lr(self) -> float:
        """The learning rate when ``model.lr`` is null (by initialisation)."""
        raise NotImplementedError

    def decayed_parameters(self) -> list[tuple[torch.nn.Parameter, Tensor]]:
        """(parameter, its starting value) of every parameter under weight decay."""
        raise NotImplementedError

    def undecayed_parameters(self) -> list[torch.nn.Parameter]:
        """The trained parameters without weight decay (e.g. a threshold)."""
        return []

    @classmethod
    def search_space(cls, trial: Any, signature_dim: int, loss: type[PoolLoss]) -> dict:
        """The scorer's and the loss's parameters in a protocol study, after the shared ones
        (:mod:`src.protocol.spaces`): ``{"model.<key>": value}``, in the order they are drawn."""
        raise NotImplementedError

    @classmethod
    def default_params(
        cls, model_cfg: Mapping, signature_dim: int, loss: type[PoolLoss]
    ) -> dict[str, Any]:
        """The configured values of :meth:`search_space`'s parameters (the first trial)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------ training
    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        if self.negative_pool is None:
            raise RuntimeError(
                "No negative pool: add the NegativePoolRefresh callback (callbacks.negative_pool)."
            )
        labels = batch["labels"]
        scored = self.scored_batch(batch["features"], labels, self.negative_pool[batch["index"]])
        parts = self.loss(scored)
        logged = [parts[name] for name in self.loss.parts]
        if self.loss.needs_threshold:
            logged.append(scored.threshold)
        # Summed on the device and logged once per epoch (on_train_epoch_end): a Lightning
        # log call per value and step costs more than this step's arithmetic on small batches.
        self._epoch_means.add(torch.stack(logged).detach(), len(labels))
        return parts["loss"]

    def on_train_epoch_start(self) -> None:
        self._epoch_means.reset()

    def on_train_epoch_end(self) -> None:
        """The training log's values: means over the epoch's images."""
        if means := self._epoch_means.means():
            self.log_dict(means, on_epoch=True)

    @property
    def learning_rate(self) -> float:
        """``model.lr``, or its default by initialisation when null (:meth:`auto_lr`)."""
        if self.hparams.lr is not None:
            return float(self.hparams.lr)
        return self.auto_lr()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        """Weight decay towards the initialisation: ``grad += μ (θ − θ_init)``."""
        mu = self.hparams.weight_decay
        if self.hparams.weight_decay_to != "init" or mu == 0:
            return
        for param, start in self.decayed_parameters():
            if param.grad is not None:
                param.grad.add_(param.detach() - start, alpha=mu)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # weight_decay_to=zero: Adam's own (coupled) L2; init: on_before_optimizer_step.
        plain_decay = self.hparams.weight_decay if self.hparams.weight_decay_to == "zero" else 0.0
        groups = [
            {"params": [p for p, _ in self.decayed_parameters()], "weight_decay": plain_decay}
        ]
        if undecayed := self.undecayed_parameters():
            groups.append({"params": undecayed, "weight_decay": 0.0})
        return torch.optim.Adam(groups, lr=self.learning_rate)

    # ------------------------------------------------------------------------ the pool
    def pool_scorer(self) -> PoolScorer:
        """The pool mines with the scorer's distances and the loss's wrong side
        (:class:`~src.mining.scorer.PoolTrainedModel`)."""
        return PoolScorer(self.scorer, self.loss)

    @property
    def mining_beta(self) -> float:
        """β of ``miner=loss_weighted``, from the loss."""
        return self.loss.mining_beta
