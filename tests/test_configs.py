"""Every config group and option composes, instantiates, and is documented."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra_utils import CONF_DIR, QUIET, compose_config, miner_classes

import src.mining
from src.mining import NegativeMiner

CONF = Path(CONF_DIR)
GROUPS = [
    "data",
    "model",
    "miner",
    "callbacks",
    "logger",
    "trainer",
    "paths",
    "hydra",
    "experiment",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def test_every_group_exists_with_options():
    for group in GROUPS:
        assert options(group), f"conf/{group}/ has no options"
    assert {"cpu", "gpu"} <= set(options("trainer"))
    assert {"random", "hardest", "uncertainty_correlation"} <= set(options("miner"))


def test_every_yaml_starts_with_a_comment():
    for path in CONF.rglob("*.yaml"):
        first = path.read_text().splitlines()[0]
        assert first.startswith("# "), f"{path} must start with a one-line comment"


def test_experiment_is_not_in_the_defaults_list(tmp_path):
    cfg = compose_config(QUIET, tmp_path / "run")
    assert "experiment" not in cfg
    # `experiment=` (without +) is therefore an error, `+experiment=` the documented form.
    with pytest.raises(ConfigCompositionException):
        compose_config(["experiment=hard_neg"], tmp_path / "run2")


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in GROUPS if g not in ("experiment", "hydra") for o in options(g)],
)
def test_every_option_composes(group, option, tmp_path):
    cfg = compose_config(["print_config=false", f"{group}={option}"], tmp_path / "run")
    assert cfg[group] is not None


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_composes_and_instantiates(experiment, tmp_path):
    cfg = compose_config([*QUIET, f"+experiment={experiment}"], tmp_path / "run")
    miner = hydra.utils.instantiate(cfg.miner)
    assert isinstance(miner, NegativeMiner)
    model = hydra.utils.instantiate(cfg.model, feature_dim=8, signature_dim=4)
    assert model.metric.W.shape == (8, 4)
    for node in cfg.callbacks.values():
        if node is not None:
            hydra.utils.instantiate(node)


def test_hard_neg_uses_uncertainty_correlation_and_cli_override_wins(tmp_path):
    cfg = compose_config(["+experiment=hard_neg"], tmp_path / "a")
    assert cfg.miner._target_.endswith("UncertaintyCorrelationMiner")
    cfg = compose_config(["+experiment=hard_neg", "miner=hardest"], tmp_path / "b")
    assert cfg.miner._target_.endswith("HardestMiner")
    callback = hydra.utils.instantiate(cfg.callbacks.negative_pool)
    assert type(callback.pool.miner).__name__ == "HardestMiner"
    assert (callback.pool.warmup_epochs, callback.pool.refresh_every) == (1, 1)


@pytest.mark.parametrize("option", options("miner"))
def test_every_miner_instantiates_with_its_knobs(option, tmp_path):
    cfg = compose_config([f"miner={option}"], tmp_path / "run")
    miner = hydra.utils.instantiate(cfg.miner)
    assert miner.num_negatives == cfg.miner.num_negatives
    pool = hydra.utils.instantiate(cfg.callbacks.negative_pool).pool
    assert type(pool.miner) is type(miner) and pool.seed == cfg.seed


def test_every_miner_class_has_one_config_and_every_config_a_miner_class():
    """The configs are the registry: each NegativeMiner that src.mining exports is one
    ``miner=`` option, and each option names a NegativeMiner."""
    exported = {
        cls for cls in vars(src.mining).values()
        if isinstance(cls, type) and issubclass(cls, NegativeMiner) and cls is not NegativeMiner
    }  # fmt: skip
    configured = miner_classes()
    assert sorted(configured) == sorted(options("miner"))
    assert set(configured.values()) == exported
    assert len(configured) == len(exported)  # one option per class


def test_unknown_miner_names_the_value(tmp_path):
    with pytest.raises(MissingConfigException, match="miner/nope"):
        compose_config(["miner=nope"], tmp_path / "run")


def test_run_folders_are_unique_within_the_same_second(tmp_path):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        dirs = {
            compose("train", return_hydra_config=True).hydra.run.dir,
            compose("train", return_hydra_config=True).hydra.run.dir,
            compose("train", return_hydra_config=True).hydra.run.dir,
        }
    assert len(dirs) == 3
