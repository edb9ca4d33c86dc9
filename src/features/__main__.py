"""``python -m src.features``: see :mod:`src.features`."""

from src.cli.commands import features  # also the console script zsl-features

features()
