"""The builders every job and every config check share: a config group's objects, the Trainer.

:mod:`~src.cli.config_checks` calls them to let the constructors check their own arguments before
any data is read; :mod:`~src.cli.job` and the entry points call them to run. They import neither.
"""

from __future__ import annotations

from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a group (callbacks, loggers)."""
    if not cfg:
        return []
    nodes = [node for node in cfg.values() if isinstance(node, DictConfig) and "_target_" in node]
    return [hydra.utils.instantiate(node) for node in nodes]


def make_trainer(trainer_cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """Instantiate the configured Trainer with :class:`~src.runs.checkpoints.AtomicCheckpointIO`
    (unless the config brings a checkpoint IO of its own) and, when ``callbacks`` hold no
    progress bar, :class:`~src.callbacks.progress_bar.CompactProgressBar` (not Lightning's own)."""
    from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO
    from lightning.pytorch.callbacks import ProgressBar

    from src.callbacks.progress_bar import CompactProgressBar
    from src.runs.checkpoints import AtomicCheckpointIO

    callbacks = kwargs.get("callbacks")
    wants_bar = trainer_cfg.get("enable_progress_bar") is not False
    if isinstance(callbacks, list) and wants_bar:
        if not any(isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, CompactProgressBar()]

    configured = trainer_cfg.get("plugins") or []
    plugins = [
        hydra.utils.instantiate(p) if isinstance(p, DictConfig) and "_target_" in p else p
        for p in configured
    ]
    if not plugins or not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return hydra.utils.instantiate(trainer_cfg, plugins=plugins, **kwargs)
