"""Instantiation of config groups, clean-up around a job, and the outputs every job writes."""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from src.core.atomic import write_text
from src.core.env import quiet_known_warnings
from src.core.errors import one_line, user_message
from src.core.rank import is_rank_zero
from src.runs.folder import RunFolderError, clear_running

log = logging.getLogger(__name__)


def task_wrapper(task: Callable[[DictConfig], dict[str, float]]):
    """Run a job; on failure record the error in its folder; always close loggers (W&B)."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> dict[str, float]:
        output_dir = Path(cfg.paths.output_dir)
        quiet_known_warnings()
        try:
            return task(cfg)
        except RunFolderError:  # refused before writing anything: leave no record
            raise
        except Exception as error:
            # the traceback, then the one line the console shows (src.report reads it too)
            message = user_message(error)
            last = message or one_line(f"{type(error).__name__}: {error}")
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "failure.txt").write_text(f"{traceback.format_exc()}\nError: {last}\n")
            if message is None:  # a bug: Hydra prints the traceback
                log.error("Job failed; the traceback is in %s", output_dir / "failure.txt")
            raise
        finally:
            clear_running(output_dir)
            _finish_wandb()

    return wrapped


def _finish_wandb() -> None:
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        return
    if wandb.run is not None:
        wandb.finish()


def log_config(loggers: list[Any], cfg: DictConfig) -> None:
    """Every logger's run config: the job's resolved config and, under ``code``, the code that
    ran it (:func:`~src.core.provenance.provenance`). The models save their hyper-parameters
    without logging them (``save_hyperparameters(logger=False)``): they are in ``model``."""
    from src.core.provenance import provenance

    config = OmegaConf.to_container(cfg, resolve=True)
    config["code"] = provenance()
    for logger in loggers:
        logger.log_hyperparams(config)


def update_wandb_summary(loggers: list[Any], metrics: dict[str, Any]) -> None:
    """Set every W&B run's summary to the job's final metrics (those of ``metrics.json``), and
    add the selected and last epochs to its config (``epoch.selected``, ``epoch.last``).

    W&B keeps the last logged value of each key as the summary: in ``split_mode=val`` that is
    the last epoch, not the checkpoint selected on validation that ``metrics.json`` reports.
    """
    from lightning.pytorch.loggers import WandbLogger

    epochs = {k.split("/", 1)[1]: v for k, v in metrics.items() if k.startswith("epoch/")}
    for logger in loggers:
        if isinstance(logger, WandbLogger) and is_rank_zero():
            logger.experiment.summary.update(dict(metrics))
            logger.experiment.config.update({"epoch": epochs}, allow_val_change=True)


def _cell(text: str) -> int | float | str | None:
    """A CSV cell as W&B should sort and plot it: a number, ``None`` for an empty cell."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def log_reports_to_wandb(loggers: list[Any], reports: list[Path], stage: str) -> None:
    """Send ``per_class.csv`` (as a table of numbers; an empty cell is ``None``) and
    ``confusion.png`` to every W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        for path in reports:
            if path.suffix == ".csv":
                with path.open() as f:
                    rows = list(csv.reader(f))
                data = [[_cell(cell) for cell in row] for row in rows[1:]]
                logger.log_table(key=f"{stage}/per_class", columns=rows[0], data=data)
            elif path.suffix == ".png":
                logger.log_image(key=f"{stage}/confusion", images=[str(path)])


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Plain floats of a Lightning metrics dict, sorted by key."""
    return {k: float(v) for k, v in sorted(metrics.items())}


def write_metrics(metrics: dict[str, float], output_dir: str | Path) -> Path:
    """Write ``metrics.json`` (flat ``split/name`` keys) and return its path (rank 0 writes)."""
    path = Path(output_dir) / "metrics.json"
    if is_rank_zero():  # written whole or not at all: its presence marks a finished job
        write_text(path, json.dumps(metrics, indent=2, allow_nan=True) + "\n")
    return path


#: metrics that count images (``{stage}/ties``, ``{stage}/zsl_ties``): shown without decimals
COUNT_METRICS = ("ties", "zsl_ties")


def _shown(key: str, value: float) -> str:
    if math.isnan(value):
        return "nan"
    if key.rsplit("/", 1)[-1] in COUNT_METRICS and float(value).is_integer():
        return f"{value:.0f}"
    return f"{value:.4f}"


def print_results(metrics: dict[str, float], path: Path) -> None:
    """Print the final results as a table, and where they were written (rank 0 prints).

    In a multirun the job logs them in one line (its log file) instead: the sweep prints one
    line per finished job and a summary table (:mod:`src.sweeps.progress`).
    """
    from src.cli.console import in_multirun

    if not is_rank_zero():
        return
    shown = {k: _shown(k, v) for k, v in metrics.items()}
    if in_multirun():
        log.info("Results: %s → %s", " ".join(f"{k}={v}" for k, v in shown.items()), path)
        return
    table = Table(title="Results")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in shown.items():
        table.add_row(key, value)
    console = Console()
    console.print(table)
    console.print(f"Metrics written to {path}", soft_wrap=True)


def print_config(cfg: DictConfig, groups: tuple[str, ...]) -> None:
    """Print the resolved config, one block per group in ≤ 80 columns (the Trainer's arguments
    only where they differ from Lightning's defaults); in a multirun only for its first job,
    since every job's ``config.yaml`` holds its own."""
    from hydra.core.hydra_config import HydraConfig

    from src.cli.config_checks import trainer_parameters
    from src.cli.console import config_lines, in_multirun

    if in_multirun() and HydraConfig.get().job.get("num") != 0:
        return
    config = OmegaConf.to_container(cfg, resolve=True)
    defaults = {name: default for name, (_, default) in trainer_parameters().items()}
    run_dir = str(cfg.paths.output_dir)
    title = f"{'config of job 0' if in_multirun() else 'config'}; <run> = {run_dir}"
    lines = [title, *config_lines(config, groups, skip={"trainer": defaults}, run_dir=run_dir)]
    print("\n".join(lines), flush=True)


def seed_run(seed: int) -> None:
    L.seed_everything(seed, workers=True, verbose=False)
