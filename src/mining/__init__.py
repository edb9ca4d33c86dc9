"""Negative-mining strategies behind one contract (:class:`NegativeMiner`); each is a
``miner=`` option (conf/miner/<name>.yaml names its class), and the configs are the registry."""

from src.mining.all_miner import AllMiner
from src.mining.correlation_miner import CorrelationMiner
from src.mining.hardest_miner import HardestMiner
from src.mining.loss_weighted_miner import LossWeightedMiner
from src.mining.negative_miner import MiningInputs, NegativeMiner
from src.mining.random_fixed_miner import RandomFixedMiner
from src.mining.random_miner import RandomMiner
from src.mining.semi_hard_miner import SemiHardMiner
from src.mining.uncertainty_correlation_miner import UncertaintyCorrelationMiner
from src.mining.uncertainty_miner import UncertaintyMiner

__all__ = [
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
