"""Launchers (joblib, submitit local/SLURM) and the retired Optuna sweeper: configs, plugins,
real sweeps."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
from pathlib import Path

import hydra
import pytest
from cli_utils import run_cli
from hydra import compose, initialize_config_dir
from hydra_utils import CONF_DIR
from omegaconf import DictConfig, OmegaConf

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher",
    "submitit": "hydra_plugins.hydra_submitit_launcher.submitit_launcher",
}
QUIET_CLI = ["print_config=false", "callbacks.rich_progress_bar=null"]


def require_plugin(name: str):
    """Import a Hydra plugin; skip without it, but fail under CI, which must install it."""
    try:
        return importlib.import_module(PLUGINS[name])
    except ImportError as error:
        if os.environ.get("CI"):
            pytest.fail(f"Hydra plugin {name} is needed under CI: {error}")
        pytest.skip(f"Hydra plugin {name} is not installed: {error}")


def compose_with_hydra(overrides: list[str], log_dir: Path) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(
            "train",
            return_hydra_config=True,
            overrides=[*overrides, f"paths.log_dir={log_dir}"],
        )


def run_sweep(args: list[str], log_dir: Path) -> subprocess.CompletedProcess:
    return run_cli("src.train", [*args, *QUIET_CLI, f"paths.log_dir={log_dir}"], timeout=600)


# -------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", sorted(PLUGINS))
def test_plugins_import(name):
    require_plugin(name)


@pytest.mark.parametrize(
    ("launcher", "plugin"), [("joblib", "joblib"), ("submitit_local", "submitit")]
)
def test_local_launchers_compose_to_their_plugin(launcher, plugin, tmp_path):
    module = require_plugin(plugin)
    cfg = compose_with_hydra([f"hydra/launcher={launcher}"], tmp_path)
    target = hydra.utils.get_class(cfg.hydra.launcher._target_)
    assert target.__module__ == module.__name__
    OmegaConf.to_container(cfg.hydra.launcher, resolve=True)  # every value resolves


def test_sweeps_and_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    first, second = (compose_with_hydra([], tmp_path).hydra for _ in range(2))
    assert first.sweep.dir != second.sweep.dir and first.run.dir != second.run.dir
    # ... while the jobs of one sweep share its folder, one subfolder each (job number).
    assert OmegaConf.to_container(first.sweep)["subdir"] == "${hydra.job.num}"


def test_joblib_n_jobs_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ZSL_JOBLIB_N_JOBS", raising=False)
    assert compose_with_hydra(["hydra/launcher=joblib"], tmp_path).hydra.launcher.n_jobs == 2
    monkeypatch.setenv("ZSL_JOBLIB_N_JOBS", "4")
    assert compose_with_hydra(["hydra/launcher=joblib"], tmp_path).hydra.launcher.n_jobs == 4


def test_slurm_launcher_takes_tasks_from_the_trainer_and_the_rest_from_env(tmp_path, monkeypatch):
    require_plugin("submitit")
    for name in ("PARTITION", "ACCOUNT", "QOS", "TIMEOUT_MIN", "CPUS_PER_TASK", "MEM_GB"):
        monkeypatch.delenv(f"ZSL_SLURM_{name}", raising=False)
    cfg = compose_with_hydra(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4"], tmp_path)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert (launcher["tasks_per_node"], launcher["gpus_per_node"], launcher["nodes"]) == (4, 4, 1)
    assert launcher["partition"] is None and launcher["account"] is None
    assert (launcher["timeout_min"], launcher["cpus_per_task"], launcher["mem_gb"]) == (240, 8, 32)

    monkeypatch.setenv("ZSL_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("ZSL_SLURM_TIMEOUT_MIN", "30")
    cfg = compose_with_hydra(["hydra/launcher=slurm", "trainer=ddp"], tmp_path)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (launcher["partition"], launcher["timeout_min"], launcher["tasks_per_node"]) == (
        "gpu",
        30,
        2,
    )
    # The documented env variables are in .env.example.
    example = (ROOT / ".env.example").read_text()
    assert all(f"ZSL_SLURM_{n}=" in example for n in ("PARTITION", "TIMEOUT_MIN", "MEM_GB"))


def test_optuna_is_current_and_its_sqlite_storage_resumes_a_study(tmp_path):
    import optuna
    import sqlalchemy

    assert int(optuna.__version__.split(".")[0]) >= 4
    assert int(sqlalchemy.__version__.split(".")[0]) >= 2
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    study.optimize(lambda trial: trial.suggest_float("x", 0.0, 1.0), n_trials=2)
    resumed = optuna.create_study(
        study_name="s", storage=url, direction="maximize", load_if_exists=True
    )
    assert len(resumed.trials) == 2


# --------------------------------------------------------------------- real sweeps (slow)
@pytest.mark.slow
def test_submitit_local_sweep_runs_each_job_in_its_own_folder(tmp_path):
    require_plugin("submitit")
    args = ["-m", "hydra/launcher=submitit_local", "seed=1,2", "trainer.max_epochs=1"]
    result = run_sweep(args, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweeps = list((tmp_path / "train" / "multiruns").iterdir())
    assert len(sweeps) == 1  # both jobs (separate processes) resolved the same sweep folder
    jobs = sorted(p for p in sweeps[0].iterdir() if p.is_dir() and not p.name.startswith("."))
    assert [j.name for j in jobs] == ["0", "1"]
    seeds = [OmegaConf.load(j / ".hydra" / "config.yaml").seed for j in jobs]
    assert seeds == [1, 2]
    metrics = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert all(0.0 < m["test/zsl_acc"] <= 1.0 for m in metrics)
    assert metrics[0] != metrics[1]
