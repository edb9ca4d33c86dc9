"""Losses, scorers and miners as parts that combine (issue 40): any loss trains any scorer with
any miner, the published combinations keep their names, and a new loss or a new closed-form
reference is one class plus one YAML, run from a config folder of one's own."""

from __future__ import annotations

import csv
import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest
import torch
from cli_utils import ROOT, run_cli
from hydra import compose, initialize_config_dir
from hydra_utils import CONF_DIR, QUIET, compose_config
from omegaconf import OmegaConf

from src.cli.entry import loss_as_group
from src.eval import evaluate
from src.models import CompatibilityZSLSystem, MetricZSLSystem
from src.models.losses import PairLogisticLoss, SJELoss
from src.protocol.model_kinds import model_config
from src.protocol.spaces import model_parts, space
from src.train import train

LOSSES = sorted(p.stem for p in (Path(CONF_DIR) / "model" / "loss").glob("*.yaml"))
POOL_TRAINED = ("metric", "ale", "devise", "sje")


# ------------------------------------------------------------------ configs and names
@pytest.mark.parametrize("model", sorted(p.stem for p in (Path(CONF_DIR) / "model").glob("*.yaml")))
def test_the_protocols_model_configs_compose_as_hydra_composes_them(model):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        composed = compose("train", overrides=[f"model={model}"]).model
    assert OmegaConf.to_container(model_config(model)) == OmegaConf.to_container(composed)


def test_the_published_combinations_keep_their_names_and_losses():
    expected = {"metric": "PairLogisticLoss", "ale": "ALELoss", "devise": "DeViSELoss",
                "sje": "SJELoss"}  # fmt: skip
    for model, loss in expected.items():
        cfg = model_config(model)
        assert cfg.loss._target_ == f"src.models.losses.{loss}"
    assert set(LOSSES) == {"pair_logistic", "ale", "devise", "sje"}
    # today's flat keys: the metric's pair loss, the classics' margin
    assert {"beta", "attribute_weight", "negative_weight"} <= set(model_config("metric"))
    assert {"margin", "beta"} <= set(model_config("ale")) and "objective" not in model_config("ale")


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("model.loss=sje", "model/loss=sje"),
        ("model.loss=ale,sje", "model/loss=ale,sje"),  # a sweep over losses
        ("model.loss._target_=my.Loss", "model.loss._target_=my.Loss"),
        ("model.margin=2", "model.margin=2"),
        ("model=metric", "model=metric"),
    ],
)
def test_a_loss_by_name_on_the_command_line_is_its_config_group(arg, expected):
    assert loss_as_group(arg) == expected


# ------------------------------------------------------------------- any loss × scorer
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("untrained")
    return {
        model: train(
            compose_config([*QUIET, f"model={model}", "trainer.max_epochs=0"], out / model)
        )
        for model in ("metric", "ale")
    }


def _train_and_evaluate(tmp_path: Path, overrides: list[str]) -> dict[str, float]:
    """Train; the last checkpoint, evaluated by src.eval, gives the same test metrics (the
    checkpoint rebuilds its loss from its hparams)."""
    metrics = train(compose_config([*QUIET, *overrides], tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    evaluated = evaluate(compose_config([f"ckpt_path={ckpt}"], tmp_path / "e", config_name="eval"))
    for key in ("test/zsl_acc", "test/gzsl_H"):
        assert evaluated[key] == pytest.approx(metrics[key], abs=1e-6), key
    return metrics


def test_the_metric_trains_with_sje_and_hardest_negatives(untrained, tmp_path):
    overrides = ["model=metric", "model/loss=sje", "miner=hardest", "trainer.max_epochs=4"]
    metrics = _train_and_evaluate(tmp_path, overrides)
    # measured: ZSL 0.949, H 0.631; the untrained metric ZSL 0.794, H 0.116
    assert metrics["test/zsl_acc"] >= 0.9
    assert metrics["test/gzsl_H"] >= untrained["metric"]["test/gzsl_H"] + 0.3
    assert "train/violators" in metrics and "train/threshold" not in metrics


def test_the_compatibility_trains_with_the_pair_loss(untrained, tmp_path):
    overrides = ["model=ale", "model/loss=pair_logistic", "miner=hardest", "trainer.max_epochs=4"]
    metrics = _train_and_evaluate(tmp_path, overrides)
    # measured: ZSL 0.964, H 0.674; the untrained compatibility (ridge W) ZSL 0.957, H 0.481
    assert metrics["test/zsl_acc"] >= 0.93
    assert metrics["test/gzsl_H"] >= untrained["ale"]["test/gzsl_H"] + 0.1
    assert {"train/loss_neg", "train/threshold"} <= set(metrics)


def test_the_pools_wrong_side_is_the_losss():
    """The pool reads distances from the scorer and the wrong side from the loss: the metric
    with SJE ranks (``D(x, j) < D(x, y) + Δ``), the compatibility with the pair loss has a
    learned threshold b (``−F < b``)."""
    distances = torch.tensor([[0.5, 2.0, 1.0], [3.0, 0.2, 0.4]])
    positives = torch.tensor([1, 0])
    metric = MetricZSLSystem(4, 3, loss=SJELoss, margin=0.25)
    expected = torch.tensor([[2.25], [3.25]])
    assert torch.equal(metric.pool_scorer().thresholds(distances, positives), expected)
    compatibility = CompatibilityZSLSystem(4, 3, loss=PairLogisticLoss, beta=3.0)
    with torch.no_grad():
        compatibility.compatibility.b.fill_(-0.5)
    assert compatibility.pool_scorer().thresholds(distances, positives) == -0.5
    assert compatibility.mining_beta == 3.0 and metric.mining_beta == 1.0


def test_a_key_the_loss_does_not_read_stops_with_one_line(tmp_path):
    cfg = compose_config(
        [*QUIET, "model=metric", "model/loss=sje", "+model.attribute_weight=0.1"], tmp_path / "r"
    )
    message = (r"model\.attribute_weight is not a parameter of the loss SJELoss "
               r"\(model\.loss\._target_=src\.models\.losses\.SJELoss\)")  # fmt: skip
    with pytest.raises(Exception, match=message):
        train(cfg)
    assert not (tmp_path / "r" / "checkpoints").exists()


def test_a_checkpoint_of_an_earlier_version_keeps_its_objective():
    """Before losses were classes, a compatibility checkpoint's hparams held ``objective``."""
    model = CompatibilityZSLSystem(4, 3, objective="sje", margin=2.0)
    assert isinstance(model.loss, SJELoss) and model.loss.margin == 2.0
    assert model.hparams.loss == {"_target_": "src.models.losses.SJELoss"}


class _Trial:
    """A stand-in Optuna trial recording the order of the draws (the lowest of each range)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def suggest_categorical(self, name, choices):
        self.names.append(name)
        return choices[0]

    def suggest_float(self, name, low, high, log=False):
        self.names.append(name)
        return low

    def suggest_int(self, name, low, high, log=False):
        self.names.append(name)
        return low


@pytest.mark.parametrize(
    ("model", "loss", "drawn"),
    [
        ("metric", None, ["attribute_weight", "weight_decay", "rank"]),  # the published orders
        ("ale", None, ["weight_decay", "margin"]),
        ("metric", "sje", ["margin", "weight_decay", "rank"]),
        ("sje", "pair_logistic", ["weight_decay", "attribute_weight"]),
    ],
)
def test_a_models_search_space_is_its_scorers_and_its_losss(model, loss, drawn):
    overrides = [f"model={model}", *([f"model/loss={loss}"] if loss else [])]
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        model_cfg = compose("train", overrides=overrides).model
    ctx = type("Ctx", (), {"model_cfg": model_cfg, "signature_dim": 8, "feature_dim": 16,
                           "attribute_signatures": True, "min_train_classes": 5})  # fmt: skip
    trial = _Trial()
    values = space(trial, ctx, OmegaConf.create({"num_negatives": None}))
    assert trial.names == ["preprocessing", "l2_signatures", "init", "lr", *drawn]
    assert {f"model.{name}" for name in drawn} <= set(values)
    system, loss_cls = model_parts(model_cfg)
    assert system is (MetricZSLSystem if model == "metric" else CompatibilityZSLSystem)
    assert loss_cls.__name__ == OmegaConf.select(model_cfg, "loss._target_").rsplit(".", 1)[1]


# ------------------------------------------- a new loss and a new reference, from outside
PARTS = '''
"""A user's own parts: a loss and a closed-form reference, outside the package."""
import math

import torch

from src.metrics import per_class_nearest
from src.models.closed_form import ClosedFormClassifier, positive_values
from src.models.losses import RankingLoss
from src.models.metric import ridge_map


class SquaredHingeLoss(RankingLoss):
    """Σ_j max(0, Δ + F(x, j) − F(x, y))² over the pool negatives."""

    def per_image(self, positive, negatives, num_candidates):
        return (self.margin + negatives - positive[:, None]).clamp_min(0.0).square().sum(1)


def distances(embedded, signatures, kind):
    if kind == "cosine":
        e = torch.nn.functional.normalize(embedded, dim=1)
        return 1.0 - e @ torch.nn.functional.normalize(signatures, dim=1).T
    return torch.cdist(embedded, signatures).square()


class RidgeReference(ClosedFormClassifier):
    """Ridge regression of the features onto their classes' signatures; the ridge and the
    distance (cosine or squared Euclidean) chosen on validation."""

    title = "Ridge"
    grid_axes = ("ridges", "kinds")

    def __init__(self, feature_dim, signature_dim, ridges=(1.0,), kinds=("cosine",),
                 calibration_gamma=None, gamma_grid=None):
        super().__init__(calibration_gamma=calibration_gamma, gamma_grid=gamma_grid)
        ridges = positive_values("model.ridges", ridges)
        kinds = list(kinds)
        self.save_hyperparameters(logger=False)
        self.register_buffer("W", torch.zeros(feature_dim, signature_dim, dtype=torch.float64))
        self.register_buffer("ridge", torch.tensor(math.nan, dtype=torch.float64))
        self.register_buffer("cosine", torch.tensor(True))
        self._init_selection()

    @staticmethod
    def validation_grid(split, signatures, rows, columns):
        signatures = signatures.detach().cpu().double()
        unseen = split.unseen_classes.cpu()
        images = split.eval["unseen"]
        local = torch.searchsorted(unseen, images.labels.cpu())
        grid = torch.empty(len(rows), len(columns), dtype=torch.float64)
        for i, ridge in enumerate(rows):
            W = ridge_map(split.train.features, signatures[split.train.labels.cpu()], ridge)
            embedded = images.features.cpu().double() @ W
            for j, kind in enumerate(columns):
                d = distances(embedded, signatures[unseen], kind)
                grid[i, j] = per_class_nearest(d, local, torch.arange(len(unseen)))
        return grid

    def fit_choice(self, datamodule, row, column):
        targets = datamodule.signatures.cpu().double()[datamodule.train_labels.cpu()]
        self.W.copy_(ridge_map(datamodule.train_features, targets, row))
        self.ridge.fill_(row)
        self.cosine.fill_(column == "cosine")

    def class_distances(self, features):
        kind = "cosine" if bool(self.cosine) else "euclidean"
        return distances(features.double() @ self.W, self.signatures.double(), kind)

    def chosen_metrics(self):
        return {"val/ridge_ridge": float(self.ridge), "val/ridge_cosine": float(self.cosine)}
'''

LOSS_YAML = """\
# @package model
# The squared hinge over the pool negatives (my_parts.py).
loss:
  _target_: my_parts.SquaredHingeLoss
margin: 1.0
beta: 1.0
"""

REFERENCE_YAML = """\
# Ridge regression onto the signatures, ridge and distance chosen on validation (my_parts.py).
_target_: my_parts.RidgeReference
ridges: [0.1, 10.0]
kinds: [cosine, euclidean]
calibration_gamma: null
gamma_grid: null
"""


@pytest.fixture(scope="module")
def own_config(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A copy of conf/ with one loss YAML and one model YAML added, their classes in a module
    of the user's own; the environment that points the entry points at both."""
    from src.core.env import config_dir

    root = tmp_path_factory.mktemp("own")
    conf = root / "conf"
    shutil.copytree(config_dir(), conf)
    (root / "my_parts.py").write_text(textwrap.dedent(PARTS))
    (conf / "model" / "loss" / "squared_hinge.yaml").write_text(LOSS_YAML)
    (conf / "model" / "ridge.yaml").write_text(REFERENCE_YAML)
    path = os.pathsep.join([str(root), str(ROOT), str(ROOT / "tests")])
    return root, {"ZSL_CONFIG_DIR": str(conf), "PYTHONPATH": path}


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


def test_a_new_loss_is_a_class_and_a_yaml_and_trains_through_src_train(own_config):
    root, env = own_config
    out = root / "train_loss"
    run_cli("src.train", [*QUIET, "model.loss=squared_hinge", "miner=hardest",
                          "trainer.max_epochs=3", f"hydra.run.dir={out}"], env=env)  # fmt: skip
    metrics = _metrics(out)
    assert metrics["test/zsl_acc"] >= 0.9  # the untrained metric: 0.794
    saved = OmegaConf.load(out / "config.yaml")
    assert saved.model.loss._target_ == "my_parts.SquaredHingeLoss"
    assert saved.model.margin == 1.0 and "attribute_weight" not in saved.model


def test_a_new_reference_is_a_class_and_a_yaml_and_runs_through_src_train(own_config):
    root, env = own_config
    out = root / "train_reference"
    run_cli("src.train", [*QUIET, "model=ridge", f"hydra.run.dir={out}"], env=env)
    metrics = _metrics(out)
    assert metrics["test/zsl_acc"] >= 0.8  # chance: 0.1
    assert any(metrics["val/ridge_ridge"] == pytest.approx(r) for r in (0.1, 10.0))


def test_the_protocol_searches_a_new_loss_and_evaluates_a_new_reference(own_config):
    root, env = own_config
    out = root / "protocol"
    run_cli(
        "src.protocol",
        ["model.loss=squared_hinge", "protocol.references=[ridge]",
         "protocol.strategies=[hardest]", "protocol.n_trials=2", "protocol.searches=1",
         "protocol.max_epochs=2", "protocol.max_epochs_limit=2", "protocol.seeds=[1]",
         "protocol.ablation=false", "protocol.bootstrap.resamples=100",
         f"hydra.run.dir={out}"],
        env=env,
    )  # fmt: skip
    with (out / "protocol.csv").open() as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    assert set(rows) == {"ridge", "hardest"}
    assert rows["ridge"]["kind"] == "reference"
    assert float(rows["ridge"]["test/zsl_acc"]) > 0.5
    assert set(json.loads(rows["ridge"]["chosen"])) >= {"model.ridges", "model.kinds"}
    # the new loss's search space is its base's (the margin), crossed with the metric's
    assert {"model.margin", "model.rank"} <= set(json.loads(rows["hardest"]["chosen"]))
    assert float(rows["hardest"]["test/zsl_acc"]) > 0.5
    saved = OmegaConf.load(out / "protocol_config.yaml")
    assert saved.model.loss._target_ == "my_parts.SquaredHingeLoss"


def test_a_config_folder_of_ones_own_that_is_not_one_stops_with_one_line(tmp_path):
    result = run_cli("src.train", [], env={"ZSL_CONFIG_DIR": str(tmp_path)}, check=False)
    assert result.returncode == 1
    expected = (f"Error: ZSL_CONFIG_DIR={tmp_path} holds no train.yaml: point it at a copy of "
                "the shipped conf/ folder (with your own options added), or unset it.")  # fmt: skip
    assert result.stderr.strip().splitlines() == [expected]


def test_the_config_folder_is_zsl_config_dir_when_set(monkeypatch, tmp_path):
    from src.core.env import config_dir, config_dir_problem

    monkeypatch.setenv("ZSL_CONFIG_DIR", str(tmp_path))
    assert config_dir() == tmp_path.resolve()
    assert "holds no train.yaml" in config_dir_problem()
    (tmp_path / "train.yaml").write_text("seed: 0\n")
    assert config_dir_problem() is None
    monkeypatch.delenv("ZSL_CONFIG_DIR")
    assert config_dir() == ROOT / "conf"


def test_a_loss_that_names_no_class_stops_the_command_in_one_line(tmp_path):
    result = run_cli(
        "src.train", [*QUIET, "model.loss._target_=my.Loss", f"hydra.run.dir={tmp_path}"],
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: model.loss._target_='my.Loss' is invalid: it names no importable class "
        "(ImportError: No module named 'my'). Choose a loss with model/loss=<name> "
        "(conf/model/loss/<name>.yaml)."
    ]
