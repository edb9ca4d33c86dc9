"""Composing the real configs in tests, the way Hydra composes them for a run."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import src.runs.resolvers  # noqa: F401  (registers the config resolvers)

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")

# Keep test runs quiet and small.
QUIET = ["print_config=false", "callbacks.rich_progress_bar=null"]


def compose_config(
    overrides: list[str], output_dir: Path, config_name: str = "train"
) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` with ``overrides``; the job writes to ``output_dir``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(
            config_name,
            return_hydra_config=True,
            overrides=[*overrides, f"paths.log_dir={output_dir.parent}"],
        )
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        del cfg.hydra
    return cfg


def miner_classes() -> dict[str, type]:
    """Every ``miner=`` option's class, read off its config (conf/miner/<name>.yaml's
    ``_target_``): the strategies and the fixed pool ``all``."""
    from hydra.utils import get_class
    from omegaconf import OmegaConf

    return {
        path.stem: get_class(OmegaConf.load(path)._target_)
        for path in sorted((Path(CONF_DIR) / "miner").glob("*.yaml"))
    }


def strategy_classes() -> dict[str, type]:
    """The mining strategies (every ``miner=`` option but the fixed pool ``all``)."""
    return {name: cls for name, cls in miner_classes().items() if name != "all"}
