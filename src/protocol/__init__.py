"""The GBU protocol in one command: ``python -m src.protocol data=<name> [data.signatures=…]``.

1. references on the same splits, each with its own validation search: nearest signature
   (d = k), ESZSL, SAE and the untrained metric over the preprocessing; ALE, DeViSE and SJE
   (trained with every seen class negative) searched and refitted like the strategies
   (:mod:`~src.protocol.references`);
2. per mining strategy, an Optuna search on the validation folds only, settings and epochs
   (:mod:`~src.protocol.search`, :mod:`~src.protocol.spaces`, :mod:`~src.protocol.selection`,
   :mod:`~src.protocol.extend`);
3. per strategy, a refit on trainval with its chosen settings, for every seed, and one test
   evaluation of every refit and reference, γ fixed from validation, kept
   (:mod:`~src.protocol.training`, :mod:`~src.protocol.kept`);
4. bootstrap intervals and the paired comparisons (:mod:`~src.protocol.verdicts`);
5. ``protocol.csv``, ``comparisons.csv``, ``protocol.md``, ``.png`` (:mod:`src.protocol.report`).

:mod:`~src.protocol.pipeline` runs the stages; :mod:`~src.protocol.settings` checks every
value first; :mod:`~src.protocol.identity` keeps one protocol per folder;
:mod:`~src.protocol.executor` runs the
independent steps on ``protocol.workers`` processes or SLURM jobs, with the serial run's
results. Every finished step is saved in the folder (JSON files and one Optuna study per
strategy, in SQLite by default), so a stopped protocol continues where it stopped when run
again with ``hydra.run.dir=<its folder>``.

Importing this package imports no torch (Hydra answers ``--help`` at once): :func:`run`,
:class:`~src.protocol.pipeline.Protocol` and :func:`~src.protocol.identity.check_same_config`
load their modules when first used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Protocol", "check_same_config", "run"]
_LAZY = {"Protocol": "src.protocol.pipeline", "check_same_config": "src.protocol.identity"}


def run(cfg: Any) -> None:
    """The job of ``python -m src.protocol``: every value checked before any data is read
    (the shared ones, every ``protocol.*`` one, the pool's), one live protocol per folder, a
    folder continuing only the protocol it holds; then the protocol."""
    from pathlib import Path

    from omegaconf import OmegaConf

    from src.cli.config_checks import check_common
    from src.core.env import config_dir
    from src.protocol.identity import check_same_config
    from src.protocol.pipeline import Protocol
    from src.protocol.settings import check_protocol_settings
    from src.protocol.training import make_pool
    from src.runs.folder import refuse_if_running
    from src.runs.marker import clear_running, mark_running

    folder, conf = Path(cfg.paths.output_dir), config_dir()
    check_common(OmegaConf.to_container(cfg, resolve=True))
    check_protocol_settings(cfg.protocol, conf)
    if cfg.get("pool") is not None:  # the pool's own checks (pool.refresh_every=0…), before data
        make_pool(OmegaConf.load(conf / "miner" / "random.yaml"), int(cfg.seed), cfg.pool)
    refuse_if_running(folder)  # one live protocol per folder
    check_same_config(cfg, folder)  # a folder continues only the protocol it holds
    mark_running(folder)
    try:
        protocol = Protocol(cfg)
        protocol.report(protocol.run())
    finally:
        clear_running(folder)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'src.protocol' has no attribute {name!r}")
