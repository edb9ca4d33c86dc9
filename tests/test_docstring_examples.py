"""Every ``>>>`` example in a docstring under src/ runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
    for path in SRC.rglob("*.py")
    if ">>> " in path.read_text() and path.name != "__main__.py"
)


def test_the_examples_are_found():
    assert "src.metrics.calibration" in MODULES and "src.models.metric" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
