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

import hydra
import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from src.utils.run_folder import RunFolderError, clear_running

log = logging.getLogger(__name__)


def is_rank_zero() -> bool:
    """Whether this process writes the job's files: always without DDP, rank 0 under DDP.

    Lightning sets the rank from the environment (``LOCAL_RANK``, ``SLURM_PROCID``…) at import,
    so it is known before the Trainer exists.
    """
    return getattr(rank_zero_only, "rank", 0) == 0


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry with a ``_target_`` of a group (callbacks, loggers)."""
    if not cfg:
        return []
    nodes = [node for node in cfg.values() if isinstance(node, DictConfig) and "_target_" in node]
    return [hydra.utils.instantiate(node) for node in nodes]


def task_wrapper(task: Callable[[DictConfig], dict[str, float]]):
    """Run a job; on failure record the error in its folder; always close loggers (W&B)."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> dict[str, float]:
        output_dir = Path(cfg.paths.output_dir)
        try:
            return task(cfg)
        except RunFolderError as error:  # refused before writing anything: leave no record
            log.error("%s", error)
            raise
        except Exception:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "failure.txt").write_text(traceback.format_exc())
            log.error("Job failed; the error is in %s", output_dir / "failure.txt")
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


def make_trainer(trainer_cfg: DictConfig, **kwargs: Any) -> L.Trainer:
    """Instantiate the configured Trainer with :class:`~src.utils.checkpoints.AtomicCheckpointIO`
    (unless the config brings a checkpoint IO of its own)."""
    from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

    from src.utils.checkpoints import AtomicCheckpointIO

    configured = trainer_cfg.get("plugins") or []
    plugins = [
        hydra.utils.instantiate(p) if isinstance(p, DictConfig) and "_target_" in p else p
        for p in configured
    ]
    if not plugins or not any(isinstance(p, CheckpointIO) for p in plugins):
        plugins.append(AtomicCheckpointIO())
    return hydra.utils.instantiate(trainer_cfg, plugins=plugins, **kwargs)


def update_wandb_summary(loggers: list[Any], metrics: dict[str, float]) -> None:
    """Set every W&B run's summary to the job's final metrics (those of ``metrics.json``).

    W&B keeps the last logged value of each key as the summary: in ``split_mode=val`` that is
    the last epoch, not the checkpoint selected on validation that ``metrics.json`` reports.
    """
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and is_rank_zero():
            logger.experiment.summary.update(dict(metrics))


def log_reports_to_wandb(loggers: list[Any], reports: list[Path], stage: str) -> None:
    """Send ``per_class.csv`` (as a table) and ``confusion.png`` to every W&B logger."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if not isinstance(logger, WandbLogger):
            continue
        for path in reports:
            if path.suffix == ".csv":
                with path.open() as f:
                    rows = list(csv.reader(f))
                logger.log_table(key=f"{stage}/per_class", columns=rows[0], data=rows[1:])
            elif path.suffix == ".png":
                logger.log_image(key=f"{stage}/confusion", images=[str(path)])


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """Plain floats of a Lightning metrics dict, sorted by key."""
    return {k: float(v) for k, v in sorted(metrics.items())}


def write_metrics(metrics: dict[str, float], output_dir: str | Path) -> Path:
    """Write ``metrics.json`` (flat ``split/name`` keys) and return its path (rank 0 writes)."""
    path = Path(output_dir) / "metrics.json"
    if is_rank_zero():  # written whole or not at all: its presence marks a finished job
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(metrics, indent=2, allow_nan=True) + "\n")
        tmp.replace(path)
    return path


def print_results(metrics: dict[str, float], path: Path) -> None:
    """Print the final results as a table, and where they were written (rank 0 prints)."""
    if not is_rank_zero():
        return
    table = Table(title="Results")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        table.add_row(key, "nan" if math.isnan(value) else f"{value:.4f}")
    console = Console()
    console.print(table)
    console.print(f"Metrics written to {path}", soft_wrap=True)


def print_config(cfg: DictConfig, groups: tuple[str, ...]) -> None:
    """Print the composed config as a tree, one branch per group."""
    tree = Tree("config", guide_style="dim")
    for group in groups:
        if group in cfg:
            node = cfg[group]
            text = (
                OmegaConf.to_yaml(node, resolve=False)
                if isinstance(node, DictConfig)
                else str(node)
            )
            tree.add(f"[bold]{group}[/bold]").add(text.rstrip())
    Console().print(tree)


def seed_run(seed: int) -> None:
    L.seed_everything(seed, workers=True)
