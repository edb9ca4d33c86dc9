"""The OmegaConf resolvers of ``conf/``, registered on import (this module imports only omegaconf).

Every entry point imports it before Hydra composes a config; it stays light so that
``python -m src.train --help`` and ``--cfg job`` answer without importing torch or Lightning.
"""

from __future__ import annotations

import os
import secrets

from omegaconf import OmegaConf


def _monitor_if_validating(metric: str, split_mode: str) -> str | None:
    # Selection uses validation metrics only: in test mode nothing is monitored.
    return metric if split_mode == "val" else None


def _sweep_name() -> str:
    """W&B group: the multirun folder's name, so the jobs of one sweep are grouped together."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN:
        return os.path.basename(os.path.normpath(hydra_cfg.sweep.dir))
    return "single-runs"


def _hydra_output_subdir(output_dir: str) -> str | None:
    from src.runs.folder import hydra_output_subdir

    return hydra_output_subdir(output_dir)


def _job_log_file(output_dir: str, task_name: str, overwrite: object = False) -> str:
    from src.runs.folder import job_log_file

    return job_log_file(output_dir, task_name, overwrite)


def register_resolvers() -> None:
    """Resolvers used in ``conf/``; safe to call more than once."""
    resolvers = {
        "monitor_if_val": (_monitor_if_validating, False),
        "if_null": (lambda value, default: default if value is None else value, False),
        "sweep_name": (_sweep_name, False),
        # A short random tag, cached per config, so that two runs started in the same
        # second never share an output folder.
        "run_tag": (lambda: secrets.token_hex(3), True),
        # Hydra never rewrites a job folder's record, nor logs into a finished run's folder
        # (src/runs/folder.py).
        "hydra_output_subdir": (_hydra_output_subdir, False),
        "job_log_file": (_job_log_file, False),
    }
    for name, (fn, cache) in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=cache)


register_resolvers()
