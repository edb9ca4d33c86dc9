"""Environment set-up of every entry point: ``.env``, the config folder and the warnings
expected by design.

Nothing happens on import: the entry points call :func:`load_env` before Hydra composes the
config and :func:`quiet_known_warnings` when a job starts. The config resolvers live in
:mod:`src.runs.resolvers` (registered on import).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

#: a config folder of one's own (a copy of ``conf/`` with one's models, losses, miners)
CONFIG_DIR_VARIABLE = "ZSL_CONFIG_DIR"


def config_dir() -> Path:
    """The config folder: ``$ZSL_CONFIG_DIR`` when set (every entry point, the protocol's
    model and miner options included, then reads that folder), else the copy installed with
    the package (``src/conf``, from a wheel or ``pip install .``), else the checkout's
    top-level ``conf/`` (a clone, an editable install)."""
    own = os.environ.get(CONFIG_DIR_VARIABLE)
    if own:
        return Path(own).expanduser().resolve()
    package = Path(__file__).resolve().parents[1]
    installed = package / "conf"
    return installed if (installed / "train.yaml").is_file() else package.parent / "conf"


def config_dir_problem() -> str | None:
    """One line when ``$ZSL_CONFIG_DIR`` is set to a folder that is not a config folder."""
    own = os.environ.get(CONFIG_DIR_VARIABLE)
    if own and not (config_dir() / "train.yaml").is_file():
        return (
            f"{CONFIG_DIR_VARIABLE}={own} holds no train.yaml: point it at a copy of the "
            "shipped conf/ folder (with your own options added), or unset it."
        )
    return None


def load_env() -> None:
    """Load ``.env`` from the working directory upwards; variables already set win."""
    from dotenv import find_dotenv, load_dotenv

    path = find_dotenv(usecwd=True)
    if path:
        load_dotenv(path, override=False)
    os.environ.setdefault("WANDB_MODE", "offline")


def quiet_known_warnings() -> None:
    """Silence warnings that are expected by design and only bury the useful output."""
    # test mode has no validation loop: its empty val_dataloader list is intended.
    warnings.filterwarnings("ignore", message="Total length of .* across ranks is zero")
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")
    # The final evaluation restores only the weights of the selected checkpoint, by design.
    warnings.filterwarnings("ignore", message="Be aware that when using `ckpt_path`, callbacks")
    # batches are index-gathered tensors; Lightning cannot infer their size and need not.
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
