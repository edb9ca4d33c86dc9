"""A calm console: known third-party noise filtered where it is emitted, a compact config tree.

- :func:`quiet_hydra` (before Hydra starts): no "validated against ConfigStore schema"
  deprecation warning per launched job, no alembic plugin lines (Optuna's SQLite storage).
- :func:`quiet_job` (when a job starts): Lightning's log lines go through Hydra's handlers
  (console and the job's log file) instead of Lightning's own, without its litlogger/litmodels
  tips, the "GPU/TPU available: False" lines and the normal "stopped: max_epochs reached";
  in a multirun, W&B's own lines too (``WANDB_SILENT``).
- :class:`CalmConsole`: the console handler's filter (``conf/hydra/default.yaml``); in a
  multirun a job's console shows warnings and errors only (its log file keeps everything):
  :class:`~src.sweeps.progress.SweepProgress` reports each job in one line.
- :func:`config_lines`: the composed config in about 40 lines of at most 80 columns.
"""

from __future__ import annotations

import logging
import os
import re
import textwrap
from pathlib import Path
from typing import Any

WIDTH = 80
#: Lightning's rank-zero messages that say nothing about this run
LIGHTNING_NOISE = re.compile(
    r"^(💡 Tip: |[GTH]PU available: False|`Trainer\.fit` stopped: `max_epochs=\d+` reached)"
)


def quiet_hydra(conf_dir: str | Path) -> None:
    """Before Hydra starts: no schema-matching warning per job, no alembic plugin lines.

    ``conf/hydra/launcher/joblib.yaml`` and ``submitit_local.yaml`` list every field of the
    plugin's schema of the same name; Hydra would match them to it and warn that this is
    deprecated, once per job and in every worker process. The plugins' same-named schemas are
    dropped from the ConfigStore (the workers receive its state from this process).
    """
    from hydra.core.config_store import ConfigStore
    from hydra.core.plugins import Plugins

    Plugins.instance()  # discovers the plugins, which register their schemas
    for group in ("launcher", "sweeper"):
        stored = ConfigStore.instance().repo.get("hydra", {}).get(group, {})
        for path in (Path(conf_dir) / "hydra" / group).glob("*.yaml"):
            stored.pop(path.name, None)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _DropLightningNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not LIGHTNING_NOISE.match(str(record.getMessage()))


def quiet_job() -> None:
    """Route Lightning's logging through the job's handlers, without its known noise; in a
    multirun, W&B prints nothing (``WANDB_SILENT``): the sweep reports each job in one line."""
    import lightning  # noqa: F401  (adds its own console handler on import: removed below)

    if in_multirun():
        os.environ.setdefault("WANDB_SILENT", "true")

    if logging.getLogger().handlers:  # Hydra configured the job's logging
        for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                logger.removeHandler(handler)
            logger.propagate = True
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLightningNoise) for f in logger.filters):
            logger.addFilter(_DropLightningNoise())


def in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


class CalmConsole(logging.Filter):
    """Console filter: in a multirun job only warnings and errors; never a record already
    printed on its own (``extra={"console": False}``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "console", True):
            return False  # already printed (src.cli.entry.report)
        if record.levelno >= logging.WARNING:
            return True
        try:
            return not in_multirun()
        except Exception:  # never lose a record over the filter
            return True


# ------------------------------------------------------------------------- the config tree
def _short(value: Any) -> str:
    if isinstance(value, dict):
        target = value.get("_target_")
        return target.rsplit(".", 1)[-1] if target else "{…}"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _items(node: dict, prefix: str = "") -> list[str]:
    """``key=value`` of a node, nested plain nodes flattened with dotted keys."""
    out = []
    for key, value in node.items():
        if key == "_target_":
            continue
        if isinstance(value, dict) and "_target_" not in value:
            out += _items(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={_short(value)}")
    return out


def _wrapped(head: str, items: list[str], indent: str) -> list[str]:
    text = " ".join([head, *items]) if head else " ".join(items)
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent,
        subsequent_indent=indent + "    ",
        break_long_words=True,
        break_on_hyphens=False,
    ) or [indent + head]


def _replace(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: _replace(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, old, new) for v in node]
    return node.replace(old, new) if isinstance(node, str) and old else node


def config_lines(
    config: dict,
    groups: tuple[str, ...],
    skip: dict[str, dict] | None = None,
    run_dir: str = "",
) -> list[str]:
    """The resolved config, one block per group, wrapped at 80 columns.

    A group's ``_target_`` is shown by its class name; nested nodes with a target (callbacks)
    get a line each, unless they repeat a group (``miner=RandomMiner``); ``skip`` maps a group
    to values left out when equal (e.g. the Trainer's own defaults); ``run_dir`` is shown as
    ``<run>``.
    """
    config = _replace(config, run_dir, "<run>")
    lines, top = [], []
    for group in groups:
        if group not in config:
            continue
        node = config[group]
        if not isinstance(node, dict):
            top.append(f"{group}={_short(node)}")
            continue
        omitted = (skip or {}).get(group, {})
        node = {k: v for k, v in node.items() if not (k in omitted and omitted[k] == v)}
        targets = {
            k: v
            for k, v in node.items()
            if isinstance(v, dict) and "_target_" in v and v != config.get(k)
        }
        plain = {k: v for k, v in node.items() if k not in targets}
        head = f"{group}: {_short(node)}" if "_target_" in node else f"{group}:"
        lines += _wrapped(head, _items(plain), "")
        for key, value in targets.items():
            lines += _wrapped(f"{key}: {_short(value)}", _items(value), "  ")
    return lines + _wrapped("", top, "") if top else lines
