"""What makes a protocol the protocol it is: its ``data``, ``model``, ``protocol``, non-default
``pool`` settings and ``seed``. A run folder saves them (``protocol_config.yaml``) and holds one
protocol, whose settings are compared on every rerun (:func:`check_same_config`); each study
keeps them too (:func:`protocol_settings`, checked by
:func:`~src.protocol.study.check_study_settings`)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.core.atomic import write_text
from src.runs.config_diff import canonical_target, is_target

#: settings that change how fast a protocol runs, not what it computes
NOT_RESULTS = {"protocol.threads", "protocol.workers", "protocol.launcher", "protocol.storage"}


def check_same_config(cfg: DictConfig, folder: Path) -> None:
    """A protocol continued in its folder must be the same protocol: stop if a setting differs
    (:class:`~src.runs.folder.RunFolderError`, one line naming the keys)."""
    from src.runs.folder import RunFolderError

    path = folder / "protocol_config.yaml"
    current = protocol_config(cfg)
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        write_text(path, OmegaConf.to_yaml(OmegaConf.create(current)))  # whole or absent
        return
    saved, now = _flat(OmegaConf.to_container(OmegaConf.load(path))), _flat(current)
    keys = (set(saved) | set(now)) - NOT_RESULTS
    differ = sorted(key for key in keys if _compared(saved, key) != _compared(now, key))
    if differ:
        raise RunFolderError(
            f"{folder} holds a protocol run with other settings ({', '.join(differ)}): "
            "continue it with the same command, or choose a new hydra.run.dir."
        )


def protocol_config(cfg: DictConfig) -> dict:
    """What makes a protocol the protocol it is: its ``data``, ``model`` and ``protocol``
    settings and ``seed`` (saved as ``protocol_config.yaml``), and its ``pool`` settings where
    they differ from :class:`~src.mining.pool.NegativePool`'s defaults (a folder of an earlier
    version, which saved none, ran with those defaults and continues)."""
    current = {
        k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("data", "model", "protocol")
    }
    pool = pool_settings(cfg)
    if pool:
        current["pool"] = pool
    current["seed"] = cfg.seed
    return current


def pool_settings(cfg: DictConfig) -> dict:
    """The ``pool`` group's settings that differ from NegativePool's defaults (its miner and
    seed are each run's)."""
    import inspect

    from src.mining.pool import NegativePool

    if cfg.get("pool") is None:
        return {}
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(NegativePool).parameters.items()
        if name not in ("miner", "seed")
    }
    given = OmegaConf.to_container(cfg.pool, resolve=True)
    return {k: given[k] for k in defaults if k in given and given[k] != defaults[k]}


def protocol_settings(cfg: DictConfig) -> dict:
    """:func:`protocol_config` flattened (``protocol.n_trials``: 24…) as it is compared: the
    settings that change no result (:data:`NOT_RESULTS`) left out, a ``_target_`` by its
    defining module. A storage keeps it with each study
    (:func:`~src.protocol.study.check_study_settings`)."""
    flat = _flat(protocol_config(cfg))
    return {key: _compared(flat, key) for key in sorted(set(flat) - NOT_RESULTS)}


def _compared(flat: dict, key: str) -> object:
    """A setting as compared: a ``_target_`` by its defining module (either spelling)."""
    value = flat.get(key)
    return canonical_target(value) if is_target(key) else value


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
