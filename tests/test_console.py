"""Issue 13: a calm console and a fast start.

A sweep prints the config once, one line per job and a summary table; third-party noise is
filtered where it is emitted; progress bars fit 80 columns; ``--help`` and ``--cfg job``
import neither torch nor Lightning.
"""

from __future__ import annotations

import io
import logging
import re
import subprocess
import sys
import warnings

import pytest
from cli_utils import ROOT, cli_env, run_cli
from hydra import compose, initialize_config_dir
from hydra_utils import CONF_DIR, compose_config
from omegaconf import OmegaConf
from rich.console import Console
from rich.progress import Progress, TextColumn

from src.callbacks.progress_bar import CompactProgressBar
from src.cli.config_checks import trainer_parameters
from src.cli.console import config_lines, quiet_hydra, quiet_job

NOISE = (
    "Tip:",
    "GPU available: False",
    "TPU available",
    "validated against ConfigStore schema",
    "Testing",
    "Seed set to",
    "alembic",
    "\x1b[",
)


def visible(line: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line)


# ------------------------------------------------------------------------------ fast start
@pytest.mark.parametrize("flag", ["--help", "--cfg=job"])
def test_help_and_cfg_job_import_neither_torch_nor_lightning(flag):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['src/train.py', '{flag}']\n"
        "try:\n    runpy.run_module('src.train', run_name='__main__')\n"
        "except SystemExit as stop:\n    assert not stop.code, stop.code\n"
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=cli_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ------------------------------------------------------------------------ the config tree
def test_config_tree_is_short_and_fits_80_columns(tmp_path):
    cfg = compose_config(["+experiment=hard_neg"], tmp_path / "run")
    config = OmegaConf.to_container(cfg, resolve=True)
    defaults = {name: default for name, (_, default) in trainer_parameters().items()}
    groups = ("data", "model", "miner", "pool", "callbacks", "logger", "trainer", "paths", "seed")
    lines = config_lines(config, groups, skip={"trainer": defaults}, run_dir=str(tmp_path / "run"))
    assert len(lines) <= 45
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "UncertaintyCorrelationMiner" in text and "max_epochs=20" in text
    assert "fast_dev_run" not in text  # Lightning's defaults are left out
    assert "<run>/checkpoints" in text


# ---------------------------------------------------------------------------- progress bar
def test_progress_bar_fits_80_columns():
    bar = CompactProgressBar()
    progress = Progress(*bar.configure_columns(None), TextColumn("ZSL: 0.912 H: 0.803"))
    progress.add_task("Epoch 999/999", total=240, completed=240)
    console = Console(width=80, file=io.StringIO(), record=True, force_terminal=True)
    console.print(progress.make_tasks_table(progress.tasks))
    lines = [visible(line) for line in console.export_text().splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0].rstrip()) <= 80, lines


def test_progress_bar_shows_short_metrics_and_no_bar_for_a_lone_evaluation(monkeypatch):
    from lightning.pytorch.callbacks import RichProgressBar

    logged = {"v_num": 0, "val/zsl_acc": 0.91234, "val/gzsl_H": 0.5, "val/gzsl_s": 0.7}
    monkeypatch.setattr(RichProgressBar, "get_metrics", lambda self, trainer, module: logged)
    bar = CompactProgressBar()
    assert bar.get_metrics(None, None) == {"ZSL": "0.912", "H": "0.500"}

    class State:
        fn = "test"

    bar._trainer = type("T", (), {"state": State()})()
    assert bar.is_disabled
    State.fn = "fit"
    assert bar.is_enabled


# ------------------------------------------------------------------ third-party noise
def test_lightning_tips_and_empty_accelerator_lines_are_filtered():
    import lightning as L

    quiet_job()
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    logger.addHandler(handler)
    try:
        L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    finally:
        logger.removeHandler(handler)
    messages = [r.getMessage() for r in records]
    assert not [m for m in messages if m.startswith(("💡", "GPU available: False"))], messages


def test_optuna_and_alembic_speak_through_logging():
    from src.sweeps.progress import _optuna_through_logging

    optuna = pytest.importorskip("optuna")
    quiet_hydra(CONF_DIR)
    assert logging.getLogger("alembic").level == logging.WARNING  # no "setup plugin" lines
    optuna.logging.enable_default_handler()  # optuna's coloured stderr handler, as on import
    _optuna_through_logging()
    logger = logging.getLogger("optuna")
    default = optuna.logging._default_handler
    assert default is not None
    assert logger.propagate and default not in logger.handlers  # no colour codes of its own
    optuna.logging.enable_default_handler()  # as other tests expect it
    optuna.logging.disable_propagation()


@pytest.mark.parametrize("launcher", ["joblib", "submitit_local"])
def test_launcher_configs_compose_without_the_schema_warning(launcher, tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    quiet_hydra(CONF_DIR)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            cfg = compose(
                "train",
                return_hydra_config=True,
                overrides=[f"hydra/launcher={launcher}", f"paths.log_dir={tmp_path}"],
            )
    assert not [w for w in caught if "ConfigStore schema" in str(w.message)]
    assert cfg.hydra.launcher._target_.startswith("hydra_plugins.")


def test_eval_draws_no_progress_bar_by_default(tmp_path):
    cfg = compose_config(["ckpt_path=x.ckpt"], tmp_path / "e", config_name="eval")
    assert cfg.trainer.enable_progress_bar is False


# ------------------------------------------------------------------ a sweep, end to end
@pytest.mark.slow
def test_four_job_sweep_console_is_under_80_lines(tmp_path):
    args = ["-m", "seed=0,1,2,3", "trainer.max_epochs=2", f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args)
    console = (result.stdout + result.stderr).splitlines()
    progress = [line for line in console if ("━" in line and "Epoch" in line) or not line.strip()]
    lines = [line for line in console if line not in progress]
    assert len(lines) < 80, "\n".join(lines)
    text = "\n".join(console)
    assert not [noise for noise in NOISE if noise in text], text
    assert text.count("config of job 0") == 1 and text.count("data: SyntheticDataModule") == 1
    for k in range(1, 5):
        assert re.search(rf"\[sweep\] job {k}/4 · \d+:\d\d elapsed · ETA \d+:\d\d · #", text)
    assert "Sweep: 4 jobs in" in text and "Report: python -m src.report" in text
    table = [visible(line) for line in console if line.startswith(("┃", "│", "┏", "└"))]
    assert len(table) >= 4 + 3 and max(map(len, table)) <= 80
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    for job in range(4):
        assert (sweep / str(job) / "config.yaml").is_file()
        log = (sweep / str(job) / "train.log").read_text()
        assert "Results: test/" in log and "synthetic(seed=0)" in log
