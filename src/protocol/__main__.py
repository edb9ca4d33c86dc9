"""``python -m src.protocol``: the console script ``zsl-protocol``."""

from src.cli.commands import protocol

protocol()
