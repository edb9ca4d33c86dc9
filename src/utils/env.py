"""Environment set-up shared by every entry point: ``.env`` and OmegaConf resolvers."""

from __future__ import annotations

import os
import secrets
import warnings

from dotenv import find_dotenv, load_dotenv
from omegaconf import OmegaConf


def load_env() -> None:
    """Load ``.env`` from the working directory upwards; variables already set win."""
    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)
    os.environ.setdefault("WANDB_MODE", "offline")


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
    from src.utils.run_folder import hydra_output_subdir

    return hydra_output_subdir(output_dir)


def _job_log_file(output_dir: str, task_name: str, overwrite: object = False) -> str:
    from src.utils.run_folder import job_log_file

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
        # (src/utils/run_folder.py).
        "hydra_output_subdir": (_hydra_output_subdir, False),
        "job_log_file": (_job_log_file, False),
    }
    for name, (fn, cache) in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, fn, use_cache=cache)


def quiet_known_warnings() -> None:
    """Silence warnings that are expected by design and only bury the useful output."""
    # test mode has no validation loop: its empty val_dataloader list is intended.
    warnings.filterwarnings("ignore", message="Total length of .* across ranks is zero")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    # The final evaluation restores only the weights of the selected checkpoint, by design.
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks")
    # batches are index-gathered tensors; Lightning cannot infer their size and need not.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")


load_env()
register_resolvers()
quiet_known_warnings()
