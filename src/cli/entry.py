"""The command-line entry of every Hydra job: a fast start, and one line per user mistake.

An entry module (``src/train.py``, ``src/eval.py``, ``src/protocol/``) and its console
script (``zsl-train``…, :mod:`src.cli.commands`) start the same way::

    launch(job_of("src.train"), "train.yaml")

so Hydra reads its flags (``--help``, ``--cfg job``, ``-m``, ``-sc``…) after importing only
Hydra, OmegaConf and this module; torch and Lightning are imported by the first job.

:func:`run_job` runs a job. A user error (:func:`~src.core.errors.user_message`) ends it with
one line, ``Error: <message>``, exit status 1; its folder's ``failure.txt`` holds the
traceback (written by :func:`~src.cli.job.task_wrapper`), and ``HYDRA_FULL_ERROR=1`` lets
Hydra print it. In a multirun of the basic sweeper a failed job prints its line (or, for a
bug, its traceback) and returns NaN, so that the other jobs run;
:class:`~src.sweeps.progress.SweepProgress` ends the sweep with the failures named and
exit status 1. Other sweepers (Optuna) get the error itself, as one line.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import src.runs.resolvers  # noqa: F401  (the config resolvers, before Hydra composes)
from src.core.env import config_dir
from src.core.errors import JobError, one_line, user_message

log = logging.getLogger("src.job")


def launch(job: Callable[[Any], Any], config_name: str) -> None:
    """Run Hydra's command line for ``job`` (:func:`src.cli.commands.job_of`), then exit.

    A Hydra plugin that the command line selects and that is not installed stops it first,
    with one line naming the extra to install (:func:`src.core.extras.missing_plugin`).
    """
    import hydra

    from src.cli.console import quiet_hydra
    from src.core.env import config_dir_problem, load_env
    from src.core.extras import missing_plugin

    load_env()  # first: .env may name the config folder (ZSL_CONFIG_DIR)
    conf_dir = str(config_dir())
    problem = config_dir_problem() or missing_plugin(sys.argv[1:], conf_dir)
    if problem is not None:
        print(f"Error: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(1)
    quiet_hydra(conf_dir)
    sys.argv[1:] = [loss_as_group(arg) for arg in sys.argv[1:]]

    @functools.wraps(job)  # Hydra names the job after job's module
    def task(cfg: Any) -> Any:
        return run_job(job, cfg)

    hydra.main(version_base="1.3", config_path=conf_dir, config_name=config_name)(task)()
    sys.exit(0)


def loss_as_group(arg: str) -> str:
    """``model.loss=<name>`` (a loss by its option name, as one writes ``miner=hardest``) as the
    loss's config group ``model/loss=<name>``, which brings the loss's own keys along
    (``conf/model/loss/<name>.yaml``); a sweep ``model.loss=ale,sje`` as well. Other values
    (``model.loss._target_=…``) are left alone."""
    key, sep, value = arg.partition("=")
    if sep and key == "model.loss" and value and not value.startswith(("{", "null")):
        return f"model/loss={value}"
    return arg


def full_error() -> bool:
    return os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def job_number() -> int | None:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    return HydraConfig.get().job.get("num")


def run_job(job: Callable[[Any], Any], cfg: Any) -> Any:
    """Run ``job(cfg)``; turn a user error into one line (see the module's docstring)."""
    from src.cli.console import quiet_job

    quiet_job()
    try:
        return job(cfg)
    except Exception as error:
        if full_error():
            raise
        message = user_message(error)
        if not in_multirun():
            if message is None:
                raise  # a bug: Hydra prints the traceback
            report(f"Error: {message}")
            raise SystemExit(1) from None
        where = f"job {job_number()}"
        recorded = (Path(cfg.paths.output_dir) / "failure.txt").is_file()
        if not recorded or not basic_sweeper():
            # no failure.txt (a refused folder), or a sweeper that handles failures itself
            # (Optuna: max_failure_rate): the sweeper gets the error, as one line
            raise JobError(f"Error ({where}): {message or one_line(error)}") from error
        if message is None:
            log.error("%s failed:", where, exc_info=error)
        else:
            report(f"Error ({where}): {message}")
        return float("nan")


def report(line: str) -> None:
    """``line`` alone on stderr, and in the job's log file (not twice on the console)."""
    print(line, file=sys.stderr, flush=True)
    log.error("%s", line, extra={"console": False})


def basic_sweeper() -> bool:
    from hydra.core.hydra_config import HydraConfig

    target = str(HydraConfig.get().sweeper.get("_target_", ""))
    return target.endswith("BasicSweeper")
