"""End-to-end training runs: the CLI, outputs, accuracy bars, evaluation, bad configs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cli_utils import run_cli
from hydra_utils import QUIET, compose_config

from src.eval import evaluate
from src.train import train

CHANCE = 1 / 10  # 10 unseen classes in the default data


@pytest.fixture(scope="module")
def hard_neg_run(tmp_path_factory) -> tuple[Path, dict[str, float]]:
    """The default experiment, exactly as configured (test mode)."""
    out = tmp_path_factory.mktemp("hard_neg") / "run"
    return out, train(compose_config([*QUIET, "+experiment=hard_neg"], out))


def test_default_experiment_clears_the_accuracy_bar(hard_neg_run, tmp_path):
    _, metrics = hard_neg_run
    untrained = train(compose_config([*QUIET, "trainer.max_epochs=0"], tmp_path / "init"))
    assert metrics["test/zsl_acc"] >= 3 * CHANCE
    assert metrics["test/zsl_acc"] >= 0.85
    assert metrics["test/zsl_acc"] >= untrained["test/zsl_acc"] + 0.10
    assert metrics["test/gzsl_H"] >= untrained["test/gzsl_H"] + 0.20
    for key in ("test/gzsl_s", "test/gzsl_u"):
        assert 0.0 < metrics[key] <= 1.0


def test_run_writes_metrics_config_checkpoints_and_csv(hard_neg_run):
    out, metrics = hard_neg_run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    assert {"test/zsl_acc", "test/gzsl_s", "test/gzsl_u", "test/gzsl_H"} <= set(saved)
    assert "uncertainty_correlation" in (out / "config.yaml").read_text().lower() or (
        "UncertaintyCorrelationMiner" in (out / "config.yaml").read_text()
    )
    assert (out / "checkpoints" / "last.ckpt").is_file()
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    epochs = {row["epoch"] for row in rows if row.get("train/loss")}
    assert len(epochs) == 20
    assert any(row.get("pool/mean_d_neg") for row in rows)


def test_eval_reproduces_the_test_metrics_from_the_checkpoint(hard_neg_run, tmp_path):
    out, metrics = hard_neg_run
    ckpt = out / "checkpoints" / "last.ckpt"
    cfg = compose_config([f"ckpt_path={ckpt}"], tmp_path / "eval", config_name="eval")
    evaluated = evaluate(cfg)
    for key in ("test/zsl_acc", "test/gzsl_s", "test/gzsl_u", "test/gzsl_H"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6)
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_eval_rejects_a_checkpoint_of_other_shapes(hard_neg_run, tmp_path):
    out, _ = hard_neg_run
    ckpt = out / "checkpoints" / "last.ckpt"
    cfg = compose_config(
        [f"ckpt_path={ckpt}", "data.generator.feature_dim=32"], tmp_path / "e", config_name="eval"
    )
    with pytest.raises(ValueError, match=r"feature_dim=256.*feature_dim=32"):
        evaluate(cfg)


def test_validation_mode_selects_on_validation_and_reports_val_metrics(tmp_path):
    out = tmp_path / "val"
    metrics = train(
        compose_config(
            [*QUIET, "+experiment=hard_neg", "data.split_mode=val", "trainer.max_epochs=4"], out
        )
    )
    assert {"val/zsl_acc", "val/gzsl_s", "val/gzsl_u", "val/gzsl_H"} <= set(metrics)
    assert not any(key.startswith("test/") for key in metrics)
    best = [p.name for p in (out / "checkpoints").glob("epoch_*.ckpt")]
    assert len(best) == 1
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    val_epochs = [int(r["epoch"]) for r in rows if r.get("val/zsl_acc")]
    assert sorted(set(val_epochs)) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("miner.num_negatives=50", r"miner.num_negatives=50 .*≤ 49"),
        ("model.rank=86", r"model.rank=86 .*\[1, 85\]"),
        ("model.lr=-1", r"model.lr=-1"),
        ("miner.temperature=0", r"miner.temperature=0"),
        ("data.split_mode=train", r"data.split_mode='train'"),
        ("model.beta=0", r"model.beta=0 is invalid: it must be > 0"),
        ("model.attribute_weight=-1", r"model.attribute_weight=-1 is invalid: it must be ≥ 0"),
        ("pool.refresh_every=0", r"pool.refresh_every=0 is invalid: it must be ≥ 1"),
        ("pool.warmup_epochs=-1", r"pool.warmup_epochs=-1 is invalid: it must be ≥ 0"),
        ("data.val_seen_fraction=1.5", r"data.val_seen_fraction=1.5 is invalid"),
    ],
)
def test_bad_values_stop_before_training_with_a_message(override, message, tmp_path):
    out = tmp_path / "run"
    cfg = compose_config([*QUIET, "+experiment=hard_neg", override], out)
    with pytest.raises(Exception, match=message):
        train(cfg)
    assert not (out / "checkpoints").exists()
    assert message.split("=")[0].replace("\\", "") in (out / "failure.txt").read_text()


def test_unknown_data_names_the_value(tmp_path):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException, match="data/nope"):
        compose_config([*QUIET, "data=nope"], tmp_path / "run")


@pytest.mark.slow
def test_cli_hard_neg_runs_as_documented(tmp_path):
    args = ["+experiment=hard_neg", "trainer.max_epochs=2", f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = list((tmp_path / "train" / "runs").iterdir())
    assert len(runs) == 1
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    assert metrics["test/zsl_acc"] > 3 * CHANCE
    assert (runs[0] / ".hydra" / "config.yaml").is_file()
    assert "test/zsl_acc" in result.stdout


@pytest.mark.slow
def test_cli_unknown_miner_fails_with_the_available_options(tmp_path):
    args = ["+experiment=hard_neg", "miner=nope", f"paths.log_dir={tmp_path}"]
    result = run_cli("src.train", args, check=False, timeout=300)
    assert result.returncode != 0
    assert "miner/nope" in result.stderr
    assert "hardest" in result.stderr  # Hydra lists the available options


# ------------------------------------------------ calibrated GZSL, AUSUC, per-class reports
CALIBRATED_KEYS = (
    "gamma", "gzsl_s_cal", "gzsl_u_cal", "gzsl_H_cal", "ausuc", "zsl_top5", "ties", "zsl_ties"
)  # fmt: skip


def _per_class_means(path: Path) -> dict[str, float]:
    rows = list(csv.DictReader(path.open()))
    assert {r["split"] for r in rows} == {"seen", "unseen"}
    means = {}
    for split, column in [("unseen", "zsl_acc"), ("seen", "gzsl_acc"), ("unseen", "gzsl_acc")]:
        values = [float(r[column]) for r in rows if r["split"] == split]
        means[f"{split}/{column}"] = sum(values) / len(values)
    for split in ("seen", "unseen"):
        values = [float(r["gzsl_acc_cal"]) for r in rows if r["split"] == split]
        means[f"{split}/gzsl_acc_cal"] = sum(values) / len(values)
    return means


def test_run_writes_calibrated_metrics_per_class_csv_and_confusion(tmp_path):
    out = tmp_path / "run"
    metrics = train(compose_config([*QUIET, "trainer.max_epochs=2"], out))
    saved = json.loads((out / "metrics.json").read_text())
    for key in CALIBRATED_KEYS:
        assert f"test/{key}" in saved
    for key in ("gzsl_s_cal", "gzsl_u_cal", "gzsl_H_cal", "ausuc", "zsl_top5"):
        assert 0.0 <= saved[f"test/{key}"] <= 1.0
    assert saved["test/zsl_top5"] >= saved["test/zsl_acc"]
    assert saved["test/ties"] == 0 and saved["test/zsl_ties"] == 0  # continuous features
    # the curve ends at u = ZSL accuracy (AUSUC is logged with 4 decimals)
    assert saved["test/ausuc"] <= saved["test/zsl_acc"] + 1e-4
    means = _per_class_means(out / "per_class.csv")
    assert means["unseen/zsl_acc"] == pytest.approx(metrics["test/zsl_acc"], abs=1e-5)
    assert means["seen/gzsl_acc"] == pytest.approx(metrics["test/gzsl_s"], abs=1e-5)
    assert means["unseen/gzsl_acc"] == pytest.approx(metrics["test/gzsl_u"], abs=1e-5)
    assert means["seen/gzsl_acc_cal"] == pytest.approx(metrics["test/gzsl_s_cal"], abs=1e-5)
    assert means["unseen/gzsl_acc_cal"] == pytest.approx(metrics["test/gzsl_u_cal"], abs=1e-5)
    assert len((out / "per_class.csv").read_text().splitlines()) == 60 + 1
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_configured_calibration_gamma_is_applied_at_test(tmp_path):
    metrics = train(
        compose_config(
            [*QUIET, "trainer.max_epochs=0", "model.calibration_gamma=0.5"], tmp_path / "run"
        )
    )
    assert metrics["test/gamma"] == 0.5
    assert metrics["test/gzsl_H_cal"] != pytest.approx(metrics["test/gzsl_H"])


def test_validation_mode_logs_the_gamma_chosen_on_validation(tmp_path):
    out = tmp_path / "val"
    metrics = train(compose_config([*QUIET, "data.split_mode=val", "trainer.max_epochs=2"], out))
    for key in CALIBRATED_KEYS:
        assert f"val/{key}" in metrics
    assert not any(key.startswith("test/") for key in metrics)
    # γ maximises validation H over every γ, 0 included: never below the uncalibrated H
    assert metrics["val/gzsl_H_cal"] >= metrics["val/gzsl_H"] - 1e-6
    rows = list(csv.DictReader((out / "csv" / "metrics.csv").open()))
    assert len([r for r in rows if r.get("val/gamma")]) == 2  # one γ per validation epoch
    assert (out / "per_class.csv").is_file() and (out / "confusion.png").is_file()


def test_eval_writes_per_class_reports_and_the_calibrated_metrics(hard_neg_run, tmp_path):
    out, metrics = hard_neg_run
    for key in CALIBRATED_KEYS:
        assert f"test/{key}" in metrics
    cfg = compose_config(
        [f"ckpt_path={out / 'checkpoints' / 'last.ckpt'}"], tmp_path / "eval", config_name="eval"
    )
    evaluated = evaluate(cfg)
    for key in CALIBRATED_KEYS:
        assert evaluated[f"test/{key}"] == pytest.approx(metrics[f"test/{key}"], abs=1e-5)
    assert (tmp_path / "eval" / "per_class.csv").read_text() == (out / "per_class.csv").read_text()
    assert (tmp_path / "eval" / "confusion.png").is_file()


def test_eval_loads_a_checkpoint_of_another_classifier(tmp_path):
    import lightning as L
    import torch

    from src.data.synthetic import SyntheticDataModule
    from src.evaluation.gamma import TestGammaFromValidation
    from src.models import ESZSLClassifier

    dm = SyntheticDataModule(split_mode="test")
    dm.setup()
    model = ESZSLClassifier(dm.feature_dim, dm.signature_dim, gammas=[1.0], lambdas=[10.0])
    trainer = L.Trainer(
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[TestGammaFromValidation()],  # as src.train and src.eval test
    )
    expected = trainer.test(model, datamodule=dm, verbose=False)[0]
    ckpt = tmp_path / "eszsl.ckpt"
    trainer.save_checkpoint(ckpt)
    evaluated = evaluate(compose_config([f"ckpt_path={ckpt}"], tmp_path / "e", config_name="eval"))
    for key in ("test/zsl_acc", "test/gzsl_H", "test/gamma", "test/ausuc"):
        assert evaluated[key] == pytest.approx(expected[key], abs=1e-6)
    # a checkpoint that does not name its class is refused, not guessed from its
    # hyper-parameters
    checkpoint = torch.load(ckpt, weights_only=True)
    del checkpoint["zsl_classifier_class"]
    torch.save(checkpoint, tmp_path / "old.ckpt")
    with pytest.raises(ValueError, match="does not name the model class that saved it"):
        evaluate(compose_config([f"ckpt_path={tmp_path / 'old.ckpt'}"], tmp_path / "e2", "eval"))


def test_gamma_grid_restricts_the_validation_choice(tmp_path):
    grid = [-0.5, 0.25, 1.0, 2.0]
    overrides = ["data.split_mode=val", "trainer.max_epochs=0", f"model.gamma_grid={grid}"]
    metrics = train(compose_config([*QUIET, *overrides], tmp_path / "run"))
    assert metrics["val/gamma"] in grid


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.calibration_gamma=abc", r"model.calibration_gamma='abc' is invalid"),
        ("model.gamma_grid=[]", r"model.gamma_grid=\[\]"),
    ],
)
def test_bad_calibration_values_stop_before_training(override, message, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(Exception, match=message):  # Hydra wraps the model's ValueError
        train(compose_config([*QUIET, override], out))
    assert not (out / "checkpoints").exists()
