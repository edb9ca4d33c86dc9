"""Every value of a job's config is checked before any data is read or trained on.

:func:`check_train_config` and :func:`check_eval_config` raise a
:class:`~src.core.errors.ConfigError` naming the key, the value and what is allowed:

- ``seed`` in [0, 2³² − 1]; ``data.batch_size`` and ``data.eval_batch_size`` ≥ 1;
- ``selection_metric`` one of :data:`VALIDATION_METRICS` (what every model logs on
  validation; see :class:`~src.models.classifier.ZSLClassifier`);
- ``trainer.<arg>``: a parameter of ``lightning.pytorch.Trainer`` (``logger`` and
  ``callbacks`` come from their own groups) with a value of the type Lightning declares;
- every value of the ``data``, ``model``, ``miner``, ``pool``, ``callbacks`` and ``logger``
  nodes of the type its class's constructor declares (``model.lr=abc``: "a number or null"),
  before the class is built (:func:`check_arguments`); the keys of ``data.generator`` are
  those of :func:`~src.data.synthetic.make_synthetic_arrays`, each of its type (and the
  data module checks their ranges);
- ``model.rank`` an integer ≥ 1 (≤ the data's dimensions, checked by the model once the data
  is read, before it allocates anything);
- then the model (with placeholder dimensions: those of the data are checked once it is
  read), the miner and the callbacks are built once and the Trainer is created, so that their
  own checks (``model.rank=0``, ``miner.temperature=0``, ``trainer.accelerator=gpu`` without a
  GPU…) fail before the data is read, too.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.cli.builders import instantiate_group, make_trainer
from src.core.checks import SEED_RANGE, check_int, describe, locate, matches, show
from src.core.errors import ConfigError, one_line
from src.core.metric_catalogue import validation_metrics

#: metrics every model logs at each validation (``model_checkpoint`` maximises the chosen one)
VALIDATION_METRICS = validation_metrics()
#: Trainer arguments that the code passes from other config groups
TRAINER_FROM_GROUPS = {"logger": "logger=<option>", "callbacks": "callbacks.<name>=…"}


def check_selection_metric(value: Any, key: str = "selection_metric") -> None:
    if value not in VALIDATION_METRICS:
        names = ", ".join(VALIDATION_METRICS)
        raise ConfigError(
            f"{key}={show(value)} is invalid: it must be a validation metric, one of {names}."
        )


# ----------------------------------------------------------------------------- the trainer
@cache
def trainer_parameters() -> dict[str, tuple[Any, Any]]:
    """``{name: (type hint, default)}`` of ``lightning.pytorch.Trainer.__init__``."""
    from lightning.pytorch import Trainer

    hints = typing.get_type_hints(Trainer.__init__)
    params = inspect.signature(Trainer.__init__).parameters
    return {n: (hints.get(n, Any), p.default) for n, p in params.items() if n != "self"}


def check_trainer(trainer: Mapping[str, Any]) -> None:
    """Each ``trainer.<arg>`` is a Trainer argument with a value of its declared type."""
    params = trainer_parameters()
    for key, value in trainer.items():
        if key == "_target_":
            continue
        if key in TRAINER_FROM_GROUPS:
            raise ConfigError(
                f"trainer.{key} is set by its own config group: use {TRAINER_FROM_GROUPS[key]} "
                f"instead of trainer.{key}=…"
            )
        if key not in params:
            raise ConfigError(
                f"trainer.{key} is not an argument of lightning.pytorch.Trainer; its arguments "
                f"are: {', '.join(p for p in params if p not in TRAINER_FROM_GROUPS)}."
            )
        hint = params[key][0]
        if not matches(value, hint):
            raise ConfigError(
                f"trainer.{key}={show(value)} is invalid: Lightning's Trainer takes "
                f"{describe(hint)}."
            )


# -------------------------------------------------------------------------------- the jobs
def _resolved(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)


#: config groups whose nodes build a class (``_target_``) from their values
BUILT_GROUPS = ("data", "model", "miner", "pool", "callbacks", "logger")
#: the types a config value can take, whose hints :func:`matches` checks exactly
_PLAIN = (bool, int, float, str, type(None))


#: top-level switches of the train and eval configs
TOP_LEVEL_SWITCHES = ("overwrite", "print_config")


def check_common(config: dict[str, Any]) -> None:
    check_int("seed", config.get("seed"), *SEED_RANGE)
    for key in TOP_LEVEL_SWITCHES:
        if key in config and not isinstance(config[key], bool):
            raise ConfigError(f"{key}={show(config[key])} is invalid: it must be true or false.")
    data = config.get("data") or {}
    for key in ("batch_size", "eval_batch_size"):
        if key in data:
            check_int(f"data.{key}", data[key], 1)
    check_trainer(config.get("trainer") or {})
    for group in BUILT_GROUPS:
        node = config.get(group)
        if isinstance(node, Mapping):
            check_arguments(group, node)


def check_arguments(key: str, node: Mapping[str, Any], target: str | None = None) -> None:
    """Each value of ``node`` (and of the nodes inside it) is of the type that its
    ``_target_``'s constructor declares for it; hints other than plain values (numbers,
    strings, booleans, null, their lists and literals) are left to the class itself.

    A node without ``_target_`` whose class names the function it is passed to (a class
    attribute ``nested_arguments = {argument: "module.function"}``, e.g. ``data.generator``)
    is checked against that function's signature: each value of its declared type (unknown
    keys are the class's to name)."""
    target = node.get("_target_", target)
    hints = constructor_hints(target) if isinstance(target, str) else {}
    nested = nested_targets(target) if isinstance(target, str) else {}
    for name, value in node.items():
        if str(name).startswith("_"):
            continue
        if isinstance(value, Mapping):
            check_arguments(f"{key}.{name}", value, nested.get(str(name)))
            continue
        hint = hints.get(name)
        if hint is None or not _plain(hint) or matches(value, hint):
            continue
        raise ConfigError(
            f"{key}.{name}={show(value)} is invalid: {target.rsplit('.', 1)[-1]} takes "
            f"{describe(hint)}."
        )


@cache
def constructor_hints(target: str) -> dict[str, Any]:
    """``{argument: type hint}`` of the class (or function) ``target`` names, a class's
    ``**kwargs`` followed into its bases' constructors; ``{}`` when it cannot be imported or
    its hints not evaluated (its own checks then decide)."""
    try:
        obj = locate(target)
    except Exception:
        return {}
    if not isinstance(obj, type):
        return _hints(obj)
    hints: dict[str, Any] = {}
    for cls in obj.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for name, hint in _hints(init).items():
            hints.setdefault(name, hint)
        kinds = {p.kind for p in inspect.signature(init).parameters.values()}
        if inspect.Parameter.VAR_KEYWORD not in kinds:
            break
    return hints


@cache
def nested_targets(target: str) -> dict[str, str]:
    """``{argument: function}`` of a class whose mapping arguments are keyword arguments of
    another function (its ``nested_arguments`` attribute); ``{}`` for any other target."""
    try:
        nested = getattr(locate(target), "nested_arguments", None)
    except Exception:
        return {}
    return dict(nested) if isinstance(nested, Mapping) else {}


def _hints(function: Any) -> dict[str, Any]:
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        return {}
    hints.pop("return", None)
    return hints


def _plain(hint: Any) -> bool:
    """Whether ``hint`` is built of plain config values only (see :func:`check_arguments`)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in _PLAIN:
        return True
    if origin is typing.Literal:
        return True
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return all(_plain(a) for a in args)
    if origin in (list, Sequence):
        return bool(args) and _plain(args[0])
    return False


def build_once(cfg: DictConfig) -> None:
    """Build the model, miner, callbacks and Trainer once, so that their checks run now."""
    import hydra

    if cfg.get("model") is not None:
        rank = cfg.model.get("rank")
        if rank is not None and not (isinstance(rank, int) and not isinstance(rank, bool)):
            raise ConfigError(f"model.rank={show(rank)} is invalid: it must be an integer or null.")
        if rank is not None and rank < 1:
            raise ConfigError(
                f"model.rank={rank} is invalid: it must lie in [1, min(feature_dim, "
                "signature_dim)] of the data, or be null (full rank)."
            )
        # Placeholder dimensions (the data's are checked once it is read, by the model, before
        # it allocates): the rank's own, at most 2, so that no rank allocates anything large.
        size = min(rank or 1, 2)
        placeholders = {"feature_dim": size, "signature_dim": size}
        if rank is not None:
            placeholders["rank"] = size
        hydra.utils.instantiate(cfg.model, **placeholders)
    if cfg.get("miner") is not None:
        hydra.utils.instantiate(cfg.miner)
    instantiate_group(cfg.get("callbacks"))
    build_trainer(cfg.trainer)


def build_trainer(trainer_cfg: DictConfig) -> None:
    """Create the configured Trainer once: Lightning's own checks of its arguments run now."""
    try:
        make_trainer(trainer_cfg, logger=False, callbacks=[])
    except Exception as error:
        cause = error.__cause__ if type(error).__name__ == "InstantiationException" else error
        raise ConfigError(
            f"trainer: lightning.pytorch.Trainer refuses these trainer.* values: "
            f"{one_line(cause or error)}"
        ) from error


def check_train_config(cfg: DictConfig) -> None:
    """Check a training job's config (see the module's docstring) before its data is read."""
    config = _resolved(cfg)
    check_common(config)
    check_selection_metric(config.get("selection_metric"))
    build_once(cfg)


def check_resume_sweep_mode(folder: Any) -> None:
    """``resume_sweep`` completes a multirun: in a single run (no ``-m``) it would be ignored."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    single = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.RUN
    if folder and single:
        raise ConfigError(
            f"resume_sweep={folder} completes a multirun, and this is a single run: give the "
            "sweep's original command with -m (python -m src.train -m … resume_sweep=…), or "
            "continue a single run with ckpt_path=<run>/checkpoints/last.ckpt."
        )


def check_eval_config(cfg: DictConfig) -> None:
    """Check an evaluation job's config (its data config included) before the data is read."""
    config = _resolved(cfg)
    check_common(config)
    gamma = config.get("calibration_gamma")
    if gamma is not None and not (isinstance(gamma, int | float) and not isinstance(gamma, bool)):
        raise ConfigError(
            f"calibration_gamma={show(gamma)} is invalid: it must be a number, or null to keep "
            "the model's."
        )
    import hydra

    hydra.utils.instantiate(cfg.data)  # constructor checks only: nothing is read yet
    build_trainer(cfg.trainer)
