"""Negative-mining strategies behind one contract (:class:`NegativeMiner`)."""

from src.mining.all_miner import AllMiner
from src.mining.base import MiningInputs, NegativeMiner
from src.mining.correlation_miner import CorrelationMiner
from src.mining.hardest_miner import HardestMiner
from src.mining.loss_weighted_miner import LossWeightedMiner
from src.mining.random_fixed_miner import RandomFixedMiner
from src.mining.random_miner import RandomMiner
from src.mining.semi_hard_miner import SemiHardMiner
from src.mining.uncertainty_correlation_miner import UncertaintyCorrelationMiner
from src.mining.uncertainty_miner import UncertaintyMiner

#: every strategy by its ``miner=`` name (conf/miner/<name>.yaml)
STRATEGIES: dict[str, type[NegativeMiner]] = {
    "random_fixed": RandomFixedMiner,
    "random": RandomMiner,
    "correlation": CorrelationMiner,
    "uncertainty": UncertaintyMiner,
    "uncertainty_correlation": UncertaintyCorrelationMiner,
    "hardest": HardestMiner,
    "semi_hard": SemiHardMiner,
    "loss_weighted": LossWeightedMiner,
}
#: the other ``miner=`` options, which choose nothing: ``all`` (every other seen class, the
#: published ranking methods; not a strategy to compare, so outside :data:`STRATEGIES`)
FIXED_POOLS: dict[str, type[NegativeMiner]] = {"all": AllMiner}

__all__ = [
    "FIXED_POOLS",
    "STRATEGIES",
    "AllMiner",
    "CorrelationMiner",
    "HardestMiner",
    "LossWeightedMiner",
    "MiningInputs",
    "NegativeMiner",
    "RandomFixedMiner",
    "RandomMiner",
    "SemiHardMiner",
    "UncertaintyCorrelationMiner",
    "UncertaintyMiner",
]
