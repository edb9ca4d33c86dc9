"""The console scripts, and the ``python -m src.<module>`` forms, of the Hydra entry points.

``zsl-train``, ``zsl-eval``, ``zsl-protocol`` and ``zsl-features`` (``[project.scripts]`` in
``pyproject.toml``) run exactly what ``python -m src.train``, ``src.eval``, ``src.protocol``
and ``src.features`` run; ``zsl-report`` and ``zsl-bench`` are :func:`src.report.main` and
:func:`src.bench.__main__.main`. Importing this module imports no torch: Hydra answers
``--help``, ``--cfg`` and ``-sc`` (shell completion: ``eval "$(zsl-train -sc install=bash)"``)
at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def job_of(module: str) -> Callable[[Any], Any]:
    """The job of entry module ``module`` (its ``run(cfg)``), imported when a job starts.

    Hydra names the job (``hydra.job.name``) after the task function's module: ``module``.
    """

    def main(cfg: Any) -> Any:
        return importlib.import_module(module).run(cfg)

    main.__module__ = module
    return main


def _launch(module: str, config_name: str) -> None:
    from src.cli.entry import launch

    launch(job_of(module), config_name)


def train() -> None:
    """``zsl-train``: ``python -m src.train``."""
    _launch("src.train", "train.yaml")


def evaluate() -> None:
    """``zsl-eval``: ``python -m src.eval``."""
    _launch("src.eval", "eval.yaml")


def protocol() -> None:
    """``zsl-protocol``: ``python -m src.protocol``."""
    _launch("src.protocol", "protocol.yaml")


def features() -> None:
    """``zsl-features``: ``python -m src.features``."""
    _launch("src.features", "features.yaml")
