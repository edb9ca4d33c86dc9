"""Issue 13: every user mistake ends in one line naming the key or file, before data is read.

The command-line cases run the real entry point in this process (``launch`` with
``sys.argv`` set, as ``python -m src.train`` does after its fast start), so they cost no
interpreter start; ``test_cli_*`` start real processes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_utils import launch_in_process, run_cli
from conftest import ToyDataset
from hydra.errors import InstantiationException
from hydra_utils import QUIET, compose_config
from lightning.fabric.utilities.exceptions import MisconfigurationException

from src.cli.config_checks import (
    VALIDATION_METRICS,
    check_common,
    check_selection_metric,
    check_trainer,
    trainer_parameters,
)
from src.core.errors import ConfigError, user_message
from src.data.arrays import DataError
from src.models import MetricZSLSystem
from src.runs.checkpoints import CheckpointError, read_checkpoint
from src.runs.weights import check_state_shapes
from src.train import run as train_job
from src.train import train


# --------------------------------------------------------------------- the checking functions
@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"seed": -1}, r"^seed=-1 is invalid: it must be an integer in \[0, 4294967295\]"),
        ({"seed": 2**32}, r"^seed=4294967296 is invalid"),
        ({"seed": 0, "data": {"batch_size": 0}}, r"^data\.batch_size=0 is invalid: .* ≥ 1"),
        ({"seed": 0, "data": {"eval_batch_size": "x"}}, r"^data\.eval_batch_size='x' is invalid"),
        ({"seed": 0, "overwrite": "yes"}, r"^overwrite='yes' is invalid: it must be true or false"),
        ({"seed": 0, "print_config": 1}, r"^print_config=1 is invalid"),
    ],
)
def test_common_values_name_their_key(config, message):
    with pytest.raises(ConfigError, match=message):
        check_common(config)


@pytest.mark.parametrize(
    ("generator", "message"),
    [
        ({"num_groups": 0}, r"^data\.generator\.num_groups=0 is invalid: .*integer ≥ 1"),
        ({"num_groups": 2.5}, r"^data\.generator\.num_groups=2\.5 is invalid"),
        ({"num_groups": True}, r"^data\.generator\.num_groups=True is invalid"),
        ({"seed": 2**32}, r"^data\.generator\.seed=4294967296 is invalid: .*2³² − 1"),
        ({"feature_noise": float("inf")}, r"^data\.generator\.feature_noise=inf is invalid"),
        ({"fine_gain": "x"}, r"^data\.generator\.fine_gain='x' is invalid: it must be a number"),
        ({"test_seen_fraction": 1.0}, r"^data\.generator\.test_seen_fraction=1\.0 is invalid"),
        ({"num_flips": 4, "fine_dims": 3}, r"^data\.generator\.num_flips=4 .*at most .*=3\."),
        ({"classes_per_group": 4}, r"^data\.generator\.unseen_per_group \+ val_per_group = 4"),
        ({"colour": 1}, r"^data\.generator\.colour is not an argument of make_synthetic_arrays"),
    ],
)
def test_generator_values_name_their_key(generator, message):
    from src.data.synthetic import SyntheticDataModule

    with pytest.raises(ConfigError, match=message):
        SyntheticDataModule(generator=generator)


def test_generator_values_of_the_wrong_type_are_named_before_the_module_is_built():
    data = {"_target_": "src.data.synthetic.SyntheticDataModule", "generator": {"seed": "s"}}
    with pytest.raises(ConfigError, match=r"^data\.generator\.seed='s' is invalid: .* integer"):
        check_common({"seed": 0, "data": data})
    data["generator"] = {"seed": 1, "fine_gain": -0.5}  # a negative gain is a valid task
    check_common({"seed": 0, "data": data})


FEATURES = [
    "features.images=/photos",
    "features.dataset=MINE",
    "features.output_dir=/data/MINE",
    "features.split.unseen=[okapi]",
]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("features.overwrite=maybe", r"^features\.overwrite='maybe' is invalid: .*true/false"),
        ("features.batch_size=big", r"^features\.batch_size='big' is invalid: .* an integer"),
        ("features.split.seed=-3", r"^features\.split\.seed=-3 is invalid"),
        ("features.split.seed=x", r"^features\.split\.seed='x' is invalid: .* an integer"),
        ("features.split.val_fraction=1.5", r"^features\.split\.val_fraction=1\.5 is invalid"),
        ("features.split.unseen=okapi", r"^features\.split\.unseen='okapi' is invalid: .*list"),
        ("features.prefix=[a]", r"^features\.prefix=\['a'\] is invalid: give \[<old>, <new>\]"),
        ("features.backbone=7", r"^features\.backbone=7 is invalid: it must be a string"),
        ("+features.colour=red", r"^features\.colour is not a setting of src\.features"),
    ],
)
def test_every_features_value_is_type_checked_by_name(override, message, tmp_path):
    from src.features.extract import check

    cfg = compose_config([*FEATURES, override], tmp_path / "run", "features")
    with pytest.raises(ConfigError, match=message):
        check(cfg.features)


def test_the_default_features_config_passes_its_checks(tmp_path):
    from src.features.extract import check

    check(compose_config(FEATURES, tmp_path / "run", "features").features)


def test_selection_metric_must_be_a_validation_metric():
    for metric in VALIDATION_METRICS:
        check_selection_metric(metric)
    for bad in ("val/zsl_ac", "test/zsl_acc", "val/gamma"):
        with pytest.raises(
            ConfigError, match=rf"^selection_metric='{bad}' is invalid: .*val/zsl_acc"
        ):
            check_selection_metric(bad)


@pytest.mark.parametrize(
    ("trainer", "message"),
    [
        ({"max_epochs": "abc"}, r"^trainer\.max_epochs='abc' is invalid: .* an integer or null"),
        ({"max_epochs": 2.5}, r"^trainer\.max_epochs=2\.5 is invalid"),
        ({"fast_dev_run": "yes"}, r"^trainer\.fast_dev_run='yes' is invalid: .*true/false"),
        ({"precision": "17"}, r"^trainer\.precision='17' is invalid: .*one of"),
        (
            {"max_epoch": 3},
            r"^trainer\.max_epoch is not an argument of lightning\.pytorch\.Trainer",
        ),
        ({"logger": False}, r"^trainer\.logger is set by its own config group: use logger="),
    ],
)
def test_trainer_arguments_are_checked_by_name_and_type(trainer, message):
    with pytest.raises(ConfigError, match=message):
        check_trainer(trainer)


def test_valid_trainer_values_pass():
    check_trainer(
        {
            "_target_": "lightning.pytorch.Trainer",
            "max_epochs": 3,
            "fast_dev_run": True,
            "devices": [0],
            "precision": "16-mixed",
            "max_time": {"minutes": 5},
            "limit_train_batches": 0.5,
            "strategy": {"_target_": "lightning.pytorch.strategies.DDPStrategy"},
            "deterministic": "warn",
        }
    )


def test_the_trainer_config_lists_every_trainer_argument(tmp_path):
    cfg = compose_config(
        [*QUIET, "trainer.fast_dev_run=true", "trainer.max_time=00:00:01:00"], tmp_path
    )
    expected = set(trainer_parameters()) - {"logger", "callbacks"}
    assert set(cfg.trainer) - {"_target_"} == expected
    assert cfg.trainer.fast_dev_run is True
    check_trainer(dict(cfg.trainer))


def test_fast_dev_run_trains_and_evaluates(tmp_path):
    metrics = train(compose_config([*QUIET, "trainer.fast_dev_run=true"], tmp_path / "run"))
    assert 0.0 <= metrics["test/zsl_acc"] <= 1.0


def test_user_message_finds_the_user_error_and_leaves_bugs():
    wrapped = InstantiationException("Error in call to target 'x':\nValueError(...)")
    wrapped.__cause__ = ValueError("model.rank=86 is invalid: it must lie in [1, 85].")
    assert user_message(wrapped) == "model.rank=86 is invalid: it must lie in [1, 85]."
    assert user_message(DataError("a.mat: key 'x' is missing\n(keys found: y)")) == (
        "a.mat: key 'x' is missing (keys found: y)"
    )
    assert user_message(MisconfigurationException("No supported gpu backend found!")).startswith(
        "trainer: No supported gpu backend found!"
    )
    assert user_message(ValueError("operands could not be broadcast")) is None
    assert user_message(KeyError("W")) is None


def test_empty_and_text_checkpoints_are_named_as_such(tmp_path):
    empty, text = tmp_path / "empty.ckpt", tmp_path / "notes.ckpt"
    empty.write_bytes(b"")
    text.write_text("hello\n")
    with pytest.raises(CheckpointError, match=r"ckpt_path=.*empty\.ckpt .*the file is empty"):
        read_checkpoint(empty)
    with pytest.raises(CheckpointError, match=r"notes\.ckpt .*not a torch\.save archive"):
        read_checkpoint(text)


def test_weights_of_other_shapes_are_named():
    checkpoint = {"state_dict": MetricZSLSystem(32, 85).state_dict()}
    with pytest.raises(CheckpointError, match=r"metric\.W \(32, 85\) \(here \(256, 85\)\)"):
        check_state_shapes(checkpoint, MetricZSLSystem(256, 85), "x.ckpt")
    check_state_shapes(checkpoint, MetricZSLSystem(32, 85), "x.ckpt")


# ------------------------------------------------------- the command line, in this process
@pytest.fixture
def cli(tmp_path, capfd):
    """``cli(*overrides)`` → (exit status, console text): ``python -m src.train`` in-process."""

    def run(*overrides: str, job=train_job, config: str = "train.yaml") -> tuple[int, str]:
        argv = ["src/train.py", *overrides, "print_config=false", f"paths.log_dir={tmp_path}"]
        return launch_in_process(job, config, argv, capfd)

    return run


def _failure(tmp_path: Path, task: str = "train") -> str:
    (folder,) = (tmp_path / task / "runs").iterdir()
    return (folder / "failure.txt").read_text()


def _toy_without_a_class_name(toy) -> Path:
    toy.att_splits["allclasses_names"] = toy.att_splits["allclasses_names"][:5]
    return toy.write()


def _toy_without_features(root: Path) -> Path:
    """A data root (as ZSL_DATA_DIR gives it) whose TOY/ folder lacks res101.mat."""
    toy = ToyDataset(root)
    toy.write()
    (toy.folder / "res101.mat").unlink()
    return root


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["data.batch_size=0"], "data.batch_size=0 is invalid"),
        (["seed=-1"], "seed=-1 is invalid"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs='abc' is invalid"),
        (["selection_metric=val/zsl_ac"], "selection_metric='val/zsl_ac' is invalid"),
        (["model.rank=0"], "model.rank=0 is invalid"),
        (["model.rank=86"], "model.rank=86 is invalid"),
        (["miner=hardest", "miner.num_negatives=50"], "miner.num_negatives=50 is invalid"),
        (["trainer.accelerator=nope"], "trainer: "),
        (["trainer.deterministic=yes"], "trainer.deterministic='yes' is invalid"),
        (["data.generator.num_groups=abc"], "data.generator.num_groups='abc' is invalid: make_"),
        (["+data.generator.groups=3"], "data.generator.groups is not an argument of make_synth"),
        (["data.generator.instance_noise=-1"], "data.generator.instance_noise=-1 is invalid"),
        (["data.generator.val_per_group=10"], "val_per_group = 12 leaves no training class"),
        (["data=cub", "data.data_dir={data}"], "CUB/att_splits.mat: file not found; put this"),
        (["data=cub", "data.dataset=TOY", "data.data_dir={no_features}"], "TOY/res101.mat: file "),
        (["data=cub", "data.dataset=TOY", "data.data_dir={toy}"], "'allclasses_names' lists 5"),
        (["ckpt_path={empty}"], "empty.ckpt is not a readable checkpoint (the file is empty)"),
        (["ckpt_path={text}"], "text.ckpt is not a readable checkpoint"),
        (["ckpt_path={other_dims}"], "holds weights of other shapes than this run's model"),
    ],
)
def test_cli_user_mistakes_end_in_one_line(cli, tmp_path, toy, overrides, named):
    files = tmp_path / "files"
    files.mkdir()
    (files / "empty.ckpt").write_bytes(b"")
    (files / "text.ckpt").write_text("not a checkpoint\n")
    torch.save({"state_dict": MetricZSLSystem(32, 85).state_dict()}, files / "other_dims.ckpt")
    paths = {
        "data": str(files),
        "toy": str(_toy_without_a_class_name(toy)),
        "no_features": str(_toy_without_features(tmp_path / "data2")),
        **{name: str(files / f"{name}.ckpt") for name in ("empty", "text", "other_dims")},
    }
    code, console = cli(*(o.format(**paths) for o in overrides))
    assert code == 1, console
    assert "Traceback" not in console
    errors = [line for line in console.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and named in errors[0], console
    failure = _failure(tmp_path)
    assert failure.startswith("Traceback") and failure.rstrip().endswith(errors[0])
    assert not list((tmp_path / "train" / "runs").glob("*/checkpoints"))


def test_cli_values_are_checked_before_the_data_is_read(cli, monkeypatch):
    from src.data.synthetic import SyntheticDataModule

    def never(*args, **kwargs):
        raise AssertionError("the data was read before the config was checked")

    monkeypatch.setattr(SyntheticDataModule, "setup", never)
    for override in (
        "selection_metric=val/nope",
        "trainer.max_epochs=abc",
        "miner.refresh_every=0",
    ):
        code, console = cli(override)
        assert code == 1 and override.split("=")[0] in console and "Traceback" not in console


def test_cli_eval_of_a_text_file_is_one_line(cli, tmp_path):
    from src.eval import run as eval_job

    (tmp_path / "notes.ckpt").write_text("hello\n")
    code, console = cli(f"ckpt_path={tmp_path / 'notes.ckpt'}", job=eval_job, config="eval.yaml")
    assert code == 1 and "Traceback" not in console
    assert "Error: ckpt_path=" in console and "not a torch.save archive" in console


def test_cli_eval_without_a_checkpoint_names_the_key(cli):
    from src.eval import run as eval_job

    code, console = cli(job=eval_job, config="eval.yaml")
    assert code == 1 and "Traceback" not in console
    assert "Error: ckpt_path is required and has no value: give it on the command line" in console


def test_cli_full_error_shows_the_traceback(cli, monkeypatch):
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    with pytest.raises(ConfigError, match="seed=-1"):
        cli("seed=-1")


# -------------------------------------------------------------------- real processes (slow)
@pytest.mark.slow
def test_cli_process_prints_one_line_and_exits_1(tmp_path):
    args = ["seed=-1", f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "Error: seed=-1 is invalid: it must be an integer in [0, 4294967295]."
    )
    assert "Traceback" not in result.stdout
    full = run_cli("src.train", args, check=False, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode == 1 and "Traceback" in full.stderr


@pytest.mark.slow
def test_cli_failing_sweep_job_names_it_and_the_others_run(tmp_path):
    args = ["-m", "seed=0,-1", "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args, check=False)
    console = result.stdout + result.stderr
    assert result.returncode == 1 and "Traceback" not in console
    assert "Error (job 1): seed=-1 is invalid" in console
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: 1 of 2 jobs failed — job 1 (seed=-1): seed=-1 is invalid")
    (sweep,) = (tmp_path / "train" / "multiruns").iterdir()
    assert (sweep / "0" / "metrics.json").is_file()
    assert "Traceback" in (sweep / "1" / "failure.txt").read_text()
