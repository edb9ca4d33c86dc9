"""Issue 19: inputs a new user gets wrong end in one line before any training, naming what.

Duplicate class names, a seen class without evaluation images, an impossible ``model.rank``,
values of the wrong type, ``resume_sweep`` outside a sweep or without ``-m``, and
``src.report`` on a missing or empty folder. The command-line cases run the real entry point
in this process (as ``tests/test_user_errors.py`` does); ``src.report`` also as a process.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_utils import launch_in_process, run_cli
from hydra_utils import QUIET, compose_config
from omegaconf import OmegaConf

from src.cli.config_checks import check_common, check_train_config
from src.core.errors import ConfigError
from src.data.arrays import DataError, ZSLArrays
from src.runs.folder import RunFolderError
from src.sweeps.check import check_resume_sweep


@pytest.fixture
def cli(tmp_path, capfd):
    """``cli(*args)`` → (exit status, console text): ``python -m src.train`` in-process."""
    from src.train import run as train_job

    def run(*args: str) -> tuple[int, str]:
        argv = ["src/train.py", *args, "print_config=false", f"paths.log_dir={tmp_path}"]
        return launch_in_process(train_job, "train.yaml", argv, capfd)

    return run


def one_error(code: int, console: str) -> str:
    """The single ``Error`` line of a command that failed without a traceback."""
    if isinstance(code, str):  # SystemExit(message): Python prints it and exits with 1
        code, console = 1, f"{console}{code}\n"
    assert code == 1, console
    assert "Traceback" not in console, console
    errors = [line for line in console.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, console
    return errors[0]


def no_training(tmp_path: Path) -> None:
    assert not list(tmp_path.glob("train/runs/*/checkpoints"))


# ------------------------------------------------------------------------------ the data
def test_a_class_name_listed_twice_is_named(cli, toy, tmp_path):
    names = toy.att_splits["allclasses_names"]
    names[5, 0] = "c1"  # the unseen c5 renamed as the train class c1
    data = toy.write()
    line = one_error(*cli("data=cub", "data.dataset=TOY", f"data.data_dir={data}"))
    assert line == (
        f"Error: {data}/TOY/att_splits.mat: allclasses_names: class name 'c1' is listed twice "
        "(classes 1 and 5, 0-based); every class needs its own name: fix the class list."
    )
    no_training(tmp_path)
    with pytest.raises(DataError, match=r"class name 'a' is listed twice \(classes 0 and 2"):
        ZSLArrays(np.zeros((3, 2)), [0, 1, 2], np.eye(3), ["a", "b", "a"], source="arrays")


def test_an_all_zero_signature_stops_before_training(cli, toy, tmp_path):
    """A class whose signature is all zeros scores 0 against every image: it would report
    ZSL 1.0 (winning every tie) or 0, meaning nothing. Refused in one line, naming it."""
    for key in ("att", "original_att"):
        toy.att_splits[key][:, 4] = 0.0  # the unseen class c4
    data = toy.write()
    line = one_error(*cli("data=cub", "data.dataset=TOY", f"data.data_dir={data}"))
    assert "1 class signature(s) are all zeros ('c4')" in line, line
    assert line.endswith("give it a signature (a missing attribute row?), or leave the class out.")
    no_training(tmp_path)


def test_identical_signatures_are_named_in_one_warning(caplog):
    signatures = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with caplog.at_level("WARNING", logger="src.data.arrays"):
        ZSLArrays(np.zeros((5, 2)), np.arange(5), signatures, list("abcde"), source="toy")
    (record,) = caplog.records
    assert "toy: 2 group(s) of classes share one signature ('a' = 'c'; 'b' = 'd')" in (
        record.getMessage()
    )
    caplog.clear()
    with caplog.at_level("WARNING", logger="src.data.arrays"):
        ZSLArrays(np.zeros((3, 2)), np.arange(3), np.eye(3), list("abc"), source="toy")
    assert not caplog.records


def test_a_seen_class_without_test_seen_images_stops_before_training(cli, toy, tmp_path):
    labels = np.repeat(np.arange(6), 10)
    test_seen = toy.att_splits["test_seen_loc"].reshape(-1)
    toy.att_splits["test_seen_loc"] = test_seen[labels[test_seen - 1] != 3][:, None]
    data = toy.write()
    line = one_error(*cli("data=cub", "data.dataset=TOY", f"data.data_dir={data}"))
    assert line.endswith(
        "1 seen classes have no seen evaluation image ('c3'): 'test_seen' holds no image of "
        "them; their per-class accuracy would be undefined. Give each seen class evaluation "
        "images, or leave the class out of the dataset."
    )
    no_training(tmp_path)
    module = toy.module(split_mode="test")  # src.eval sets its data up the same way
    with pytest.raises(DataError, match="'c3'"):
        module.setup("test")


def test_a_hold_out_that_leaves_a_train_class_without_val_seen_images_is_named(toy):
    toy.write()
    toy.module(split_mode="val", val_seen_fraction=0.2).setup("fit")  # 1 of 5 images each
    with pytest.raises(
        DataError,
        match=r"3 seen classes have no seen evaluation image \('c0', 'c1', 'c2'\): "
        r"data.val_seen_fraction=0.1 of their 'train' images holds out none \(a class needs "
        r"≥ 10 images\)",
    ):
        toy.module(split_mode="val", val_seen_fraction=0.1).setup("fit")


# ------------------------------------------------------------------------- config values
def test_an_impossible_rank_is_checked_against_the_data_before_allocating(cli, tmp_path):
    cfg = compose_config([*QUIET, "model.rank=1000000000"], tmp_path / "unit")
    start = time.monotonic()
    check_train_config(cfg)  # placeholder dimensions: nothing of the rank's size is built
    assert time.monotonic() - start < 30
    line = one_error(*cli("model.rank=100000"))
    assert line.startswith("Error: model.rank=100000 is invalid: it must lie in [1, 85]")
    no_training(tmp_path)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.lr=abc", "model.lr='abc' is invalid: MetricZSLSystem takes a number or null."),
        ("model.rank=2.5", "model.rank=2.5 is invalid: MetricZSLSystem takes an integer or null."),
        ("model.weight_decay=[1]", "model.weight_decay=[1] is invalid: MetricZSLSystem takes"),
        ("miner.num_negatives=abc", "miner.num_negatives='abc' is invalid: RandomMiner takes"),
        ("pool.refresh_every=1.5", "pool.refresh_every=1.5 is invalid: NegativePool takes an "),
        ("data.val_seen_fraction=abc", "data.val_seen_fraction='abc' is invalid: Synthetic"),
    ],
)
def test_a_value_of_the_wrong_type_names_its_key(cli, tmp_path, override, message):
    line = one_error(*cli(override))
    assert line.startswith(f"Error: {message}"), line
    no_training(tmp_path)


@pytest.mark.parametrize("config", ["train", "eval", "protocol"])
def test_every_command_checks_the_types_of_its_values(config, tmp_path):
    extra = ["ckpt_path=x.ckpt"] if config == "eval" else []
    cfg = compose_config([*extra, "data.val_seen_fraction=abc"], tmp_path / "run", config)
    with pytest.raises(ConfigError, match=r"^data.val_seen_fraction='abc' is invalid"):
        check_common(OmegaConf.to_container(cfg, resolve=True))


# ----------------------------------------------------------------------------- resume_sweep
def test_resume_sweep_without_multirun_is_refused(cli, tmp_path):
    line = one_error(*cli(f"resume_sweep={tmp_path}"))
    assert line.startswith(
        f"Error: resume_sweep={tmp_path} completes a multirun, and this is a single run: give "
        "the sweep's original command with -m"
    )
    no_training(tmp_path)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_resume_sweep_into_a_single_run_or_an_empty_folder_writes_nothing(cli, tmp_path):
    run = tmp_path / "single"
    for name in ("csv", "checkpoints", ".hydra"):
        (run / name).mkdir(parents=True)
    (run / "metrics.json").write_text("{}\n")
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    before = snapshot(run)
    line = one_error(*cli("-m", f"resume_sweep={run}", "seed=1,2"))
    assert line.startswith(f"Error: resume_sweep={run} is a single run's folder, not a sweep's")
    assert snapshot(run) == before and sorted(p.name for p in run.iterdir()) == [
        ".hydra",
        "checkpoints",
        "csv",
        "metrics.json",
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    config = OmegaConf.create({"resume_sweep": str(empty)})
    with pytest.raises(RunFolderError, match=r"is not a sweep's folder \(no multirun.yaml"):
        check_resume_sweep(config)
    assert list(empty.iterdir()) == []


# ------------------------------------------------------------------------------ src.report
def test_report_on_a_missing_or_empty_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from src.report import main

    empty = tmp_path / "empty"
    empty.mkdir()
    for folder, message in (
        (tmp_path / "missing", "no such multirun folder."),
        (empty, "no job folders (with a .hydra/ folder) found; give the folder of a multirun"),
    ):
        monkeypatch.setattr(sys, "argv", ["src.report", str(folder)])
        with pytest.raises(SystemExit) as stop:
            main()
        assert stop.value.code == 1
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f"Error: {folder}: {message}")
        assert err.count("\n") == 1
    assert list(empty.iterdir()) == []


@pytest.mark.slow
def test_report_process_on_a_missing_folder(tmp_path):
    result = run_cli("src.report", [tmp_path / "missing"], check=False)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == f"Error: {tmp_path / 'missing'}: no such multirun folder.\n"
