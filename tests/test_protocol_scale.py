"""The protocol at scale: workers and SLURM (src.protocol.executor), current Optuna and its
storages, `-m` for every entry point, the leaderboard of a protocol multirun, and the
benchmark-shaped synthetic data (``data.like``)."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from cli_utils import cli_command, cli_env, run_cli
from hydra_utils import compose_config
from test_protocol_continuation import DEFAULTS, MINER, N_TRIALS, context, fake_score

import src.protocol.search as search
from src.core.errors import ConfigError
from src.data.synthetic import BENCHMARKS, make_benchmark_arrays
from src.protocol.report.leaderboard import leaderboard
from src.protocol.search import run_study
from src.protocol.storage import storage_for
from src.protocol.study import finished_records, open_study

TINY = [
    "protocol.n_trials=2",
    "protocol.searches=1",  # the default is 3
    "protocol.max_epochs=2",
    "protocol.max_epochs_limit=2",
    "protocol.seeds=[1,2]",
    "protocol.strategies=[random,hardest]",
    "protocol.references=[eszsl,untrained]",
    "protocol.folds=[1]",
    "protocol.bootstrap.resamples=100",
]


# ------------------------------------------------------------------------ Optuna storages
def test_storage_is_the_run_folders_sqlite_file_unless_a_shared_one_is_named(tmp_path):
    assert storage_for(None, tmp_path, "random") == (
        f"sqlite:///{tmp_path}/search/random.db",
        "random",
    )
    shared = "postgresql://db.cluster/zsl"
    assert storage_for(shared, tmp_path / "run", "hardest") == (
        shared,
        f"{(tmp_path / 'run').resolve()}:hardest",
    )


def test_a_study_in_a_journal_file_holds_the_sqlite_studys_trials(tmp_path, monkeypatch):
    monkeypatch.setattr(search, "score_setting", fake_score)
    sqlite = run_study("s", tmp_path / "s.db", context(), MINER, N_TRIALS, DEFAULTS, print)
    (tmp_path / "shared").mkdir()  # a storage path needs its folder (checked on the config)
    journal = str(tmp_path / "shared" / "zsl.journal")
    first = run_study("s", journal, context(), MINER, 4, DEFAULTS, print)
    assert len(finished_records(first)) <= 4
    continued = run_study("s", journal, context(), MINER, N_TRIALS, DEFAULTS, print)
    assert (tmp_path / "shared" / "zsl.journal").is_file()
    assert finished_records(continued) == finished_records(sqlite)
    assert [t.state for t in continued.trials] == [t.state for t in sqlite.trials]


def test_a_study_of_an_older_schema_says_to_upgrade_it_in_one_line(tmp_path):
    """A SQLite study whose schema an older Optuna set up (its alembic revision set back to
    optuna 2.6's): Optuna refuses it; the protocol says how to upgrade it, in one line."""
    import sqlite3

    import optuna

    db = tmp_path / "random.db"
    optuna.create_study(study_name="random", storage=f"sqlite:///{db}")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'v2.6.0.a'")
    with pytest.raises(ConfigError) as error:
        open_study("random", db, 0, 3, DEFAULTS)
    message = str(error.value)
    assert "\n" not in message
    assert f"optuna storage upgrade --storage sqlite:///{db}" in message
    assert message.startswith(f"sqlite:///{db} holds a study written by an older Optuna")


# ---------------------------------------------------------------------------- settings
def test_the_embedded_data_says_it_runs_one_fold(tmp_path, caplog):
    from src.protocol import Protocol

    cfg = compose_config(["protocol.folds=[1,2]"], tmp_path / "run", config_name="protocol")
    with caplog.at_level(logging.WARNING, logger="src.protocol"):
        protocol = Protocol(cfg)
    assert protocol.inputs.folds == [1]
    assert "has one validation split: protocol.folds=[1, 2] runs as [1]" in caplog.text
    caplog.clear()
    cfg = compose_config(["protocol.folds=[1]"], tmp_path / "run2", config_name="protocol")
    with caplog.at_level(logging.WARNING, logger="src.protocol"):
        Protocol(cfg)
    assert "validation split" not in caplog.text


def test_a_protocol_builds_its_inputs_once_and_each_search_its_own(tmp_path):
    """The stages' inputs are built from the config once; another search (protocol.searches >
    1) has its own seed and folder and shares the data modules."""
    from src.protocol import Protocol

    cfg = compose_config(["protocol.searches=2"], tmp_path / "run", config_name="protocol")
    protocol = Protocol(cfg)
    inputs = protocol.inputs
    assert inputs.seed == int(cfg.seed) and inputs.folds == [1]
    assert set(inputs.specs) == set(cfg.protocol.strategies) | {"ale", "devise", "sje"}
    assert inputs.source and all(isinstance(v, bool) for v in inputs.preprocessing)
    other = protocol.search(inputs.seed + 1)
    assert other.inputs.seed == inputs.seed + 1 and other.inputs.data is inputs.data
    assert other.workspace.folder == tmp_path / "run" / "searches" / f"seed{inputs.seed + 1}"
    assert other.settings.searches == 1 and protocol.search(inputs.seed).inputs is inputs


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("protocol.workers=0", "protocol.workers=0 is invalid: it must be an integer ≥ 1."),
        (
            "protocol.launcher=pbs",
            "protocol.launcher='pbs' is invalid: use local, slurm or submitit_local.",
        ),
    ],
)
def test_bad_parallel_settings_are_refused_in_one_line(tmp_path, override, message):
    result = run_cli("src.protocol", [override, f"hydra.run.dir={tmp_path}/run"], check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"Error: {message}"]


def test_slurm_jobs_take_the_launcher_configs_settings(tmp_path, monkeypatch):
    from src.protocol.executor import slurm_parameters

    monkeypatch.setenv("ZSL_SLURM_PARTITION", "gpu")
    monkeypatch.setenv("ZSL_SLURM_ACCOUNT", "zsl")
    monkeypatch.setenv("ZSL_SLURM_TIMEOUT_MIN", "30")
    monkeypatch.setenv("ZSL_SLURM_CPUS_PER_TASK", "4")
    cpu = compose_config([], tmp_path / "a", config_name="protocol")
    gpu = compose_config(["trainer=gpu"], tmp_path / "b", config_name="protocol")
    assert slurm_parameters(cpu) == {
        "timeout_min": 30,
        "cpus_per_task": 4,
        "mem_gb": 32,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 0,
        "slurm_partition": "gpu",
        "slurm_account": "zsl",
        "slurm_array_parallelism": 32,
        "name": "zsl-protocol",
    }
    assert slurm_parameters(gpu)["gpus_per_node"] == 1


# ------------------------------------------------------------------------ -m everywhere
def test_eval_and_protocol_multiruns_compose(tmp_path):
    """conf/hydra/default.yaml reads resume_sweep, which only train.yaml defines: a multirun of
    src.eval or src.protocol must not stop on it (it did: InterpolationKeyError)."""
    missing = tmp_path / "none.ckpt"
    result = run_cli(
        "src.eval", ["-m", f"ckpt_path={missing}", f"hydra.sweep.dir={tmp_path}/e"], check=False
    )
    assert "resume_sweep" not in result.stderr + result.stdout
    assert str(missing) in result.stderr  # the job ran, and named its missing checkpoint
    result = run_cli(
        "src.protocol", ["-m", "protocol.workers=0", f"hydra.sweep.dir={tmp_path}/p"], check=False
    )
    assert "resume_sweep" not in result.stderr + result.stdout
    assert "protocol.workers=0 is invalid" in result.stderr + result.stdout


# ------------------------------------------------------------------------- leaderboard
def write_job(folder: Path, data: str, rows: list[tuple[str, str, float, float, float]]) -> None:
    """A finished protocol job: (name, kind, ZSL, H_cal, val score) per row, no intervals on
    H_cal of the references."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text(f"- data={data}\n- seed=0\n")
    (folder / "protocol_config.yaml").write_text("protocol:\n  strategies: [random, hardest]\n")
    with (folder / "protocol.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        metrics = [
            f"test/{m}{s}" for m in ("zsl_acc", "gzsl_H_cal") for s in ("", "_ci_low", "_ci_high")
        ]
        writer.writerow(["name", "kind", *metrics, "val_score"])
        for name, kind, zsl, h, val in rows:
            ci = ("", "") if kind == "reference" else (h - 0.05, h + 0.05)
            writer.writerow([name, kind, zsl, zsl - 0.1, zsl + 0.1, h, *ci, val])


def test_the_leaderboard_marks_each_datasets_validation_choice(tmp_path):
    first = [("eszsl", "reference", 0.9, 0.8, 0.95), ("random", "tuned", 0.7, 0.6, 0.71),
             ("hardest", "tuned", 0.75, 0.5, 0.70)]  # fmt: skip
    second = [("eszsl", "reference", 0.5, 0.4, 0.6), ("random", "tuned", 0.45, 0.3, 0.40),
              ("hardest", "tuned", 0.48, 0.35, 0.42)]  # fmt: skip
    write_job(tmp_path / "0", "synthetic", first)
    write_job(tmp_path / "1", "apy_annotations", second)
    (tmp_path / "2" / ".hydra").mkdir(parents=True)  # a job still running
    (tmp_path / "2" / ".hydra" / "overrides.yaml").write_text("- data=cub\n")
    (tmp_path / "2" / "protocol_config.yaml").write_text("protocol:\n  strategies: [random]\n")
    rows = leaderboard(tmp_path)
    chosen = [(r["dataset"], r["row"]) for r in rows if r["chosen"]]
    # the best validation score among the strategies, never the references' (eszsl: 0.95)
    assert chosen == [("synthetic", "random"), ("apy_annotations", "hardest")]
    with (tmp_path / "leaderboard.csv").open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6 and {r["dataset"] for r in table} == {"synthetic", "apy_annotations"}
    md = (tmp_path / "leaderboard.md").read_text()
    assert "| row | kind | synthetic | apy_annotations |" in md
    assert "| `random` | tuned | **0.700 [0.600, 0.800]** ★ | 0.450 [0.350, 0.550] |" in md
    # H_cal, no interval; † the reference with the best validation score (its only one here)
    assert "| `eszsl` | reference | 0.800 † | 0.400 † |" in md
    assert "- job 2 (cub)" in md
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000


# ---------------------------------------------------------------- benchmark-shaped data
@pytest.mark.parametrize("like", ["apy", "cub"])
def test_synthetic_like_a_benchmark_has_its_sizes_and_three_folds(like):
    b = BENCHMARKS[like]
    folds = [make_benchmark_arrays(like, fold) for fold in (1, 2, 3)]
    a = folds[0]
    assert a.features.shape == (b["trainval"] + b["test_seen"] + b["test_unseen"], 2048)
    assert a.signatures.shape == (b["seen"] + b["unseen"], b["k"])
    assert {k: len(v) for k, v in a.splits.items() if k != "train" and k != "val"} == {
        "trainval": b["trainval"],
        "test_seen": b["test_seen"],
        "test_unseen": b["test_unseen"],
    }
    unseen = set(a.labels[a.splits["test_unseen"]])
    seen = set(a.labels[a.splits["trainval"]])
    assert len(unseen) == b["unseen"] and len(seen) == b["seen"] and not unseen & seen
    vals = [frozenset(f.labels[f.splits["val"]]) for f in folds]
    assert all(len(v) == b["val"] and v <= seen for v in vals) and len(set(vals)) == 3
    assert np.array_equal(make_benchmark_arrays(like, 2).splits["val"], folds[1].splits["val"])


def test_synthetic_like_is_refused_for_an_unknown_benchmark():
    with pytest.raises(ValueError, match=r"data.like='imagenet' is invalid: use one of \['apy'"):
        make_benchmark_arrays("imagenet")


@pytest.mark.slow
def test_train_on_synthetic_like_cub_logs_its_sizes(tmp_path):
    result = run_cli(
        "src.train",
        ["data=synthetic", "data.like=cub", "trainer.max_epochs=1", "print_config=false",
         "callbacks.rich_progress_bar=null", f"hydra.run.dir={tmp_path}/run"],
    )  # fmt: skip
    assert "d=2048, k=312" in result.stdout + result.stderr
    assert "7057 training images of 150 seen classes" in result.stdout + result.stderr


# ------------------------------------------------------------------ parallel = serial
def protocol_args(folder: Path, *extra: str) -> list[str]:
    return [*TINY, *extra, f"hydra.run.dir={folder}"]


@pytest.mark.slow
def test_two_workers_write_the_serial_protocol_csv_and_a_killed_run_continues(tmp_path):
    serial = run_cli(
        "src.protocol", protocol_args(tmp_path / "serial"), env={"OMP_NUM_THREADS": "1"}
    )
    expected = (tmp_path / "serial" / "protocol.csv").read_bytes()
    for leaked in ("LeafSpec", "Total length of", "weights_only", "only configured"):
        assert leaked not in serial.stdout + serial.stderr
    parallel = run_cli("src.protocol", protocol_args(tmp_path / "par", "protocol.workers=2"))
    assert (tmp_path / "par" / "protocol.csv").read_bytes() == expected
    assert "tasks on 2 local workers" in parallel.stdout + parallel.stderr
    # killed (SIGKILL) during the parallel search, then continued by a serial run
    folder = tmp_path / "killed"
    process = subprocess.Popen(
        cli_command("src.protocol", protocol_args(folder, "protocol.workers=2")),
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list((folder / "search").glob("*.db")):
        time.sleep(0.2)
    time.sleep(3)  # inside the studies
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (folder / "protocol.csv").exists()
    time.sleep(1)  # the workers die with it (PR_SET_PDEATHSIG)
    run_cli("src.protocol", protocol_args(folder))
    assert (folder / "protocol.csv").read_bytes() == expected


@pytest.mark.slow
def test_the_slurm_path_as_local_submitit_jobs_writes_the_serial_protocol_csv(tmp_path):
    args = ["protocol.strategies=[random]", "protocol.references=[eszsl]", "protocol.seeds=[1]"]
    run_cli("src.protocol", protocol_args(tmp_path / "serial", *args))
    run_cli(
        "src.protocol",
        protocol_args(tmp_path / "sub", *args, "protocol.launcher=submitit_local",
                      "protocol.workers=2"),
    )  # fmt: skip
    expected = (tmp_path / "serial" / "protocol.csv").read_bytes()
    assert (tmp_path / "sub" / "protocol.csv").read_bytes() == expected
    assert list((tmp_path / "sub" / ".submitit").iterdir())  # the jobs' own folders


@pytest.mark.slow
def test_a_protocol_multirun_gives_one_leaderboard(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        "src.protocol",
        ["-m", "data.generator.seed=0,1", *TINY, "protocol.seeds=[1]", f"hydra.sweep.dir={sweep}"],
    )
    result = run_cli("src.report", [sweep])
    with (sweep / "leaderboard.csv").open() as f:
        table = list(csv.DictReader(f))
    datasets = ["synthetic generator.seed=0", "synthetic generator.seed=1"]
    assert sorted({r["dataset"] for r in table}) == datasets
    assert sum(r["chosen"] == "True" for r in table) == 2
    md = (sweep / "leaderboard.md").read_text()
    assert f"| row | kind | {datasets[0]} | {datasets[1]} |" in md and "★" in md
    assert "leaderboard.png" in result.stdout
