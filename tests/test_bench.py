"""The benchmark runs end to end and prints its JSON line (figures are measured, not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_prints_the_json_line_with_every_figure():
    args = ["--images", "300", "--dim", "64", "--classes", "20", "--sig-dim", "16"]
    args += ["--epochs", "1", "--pool-images", "2000", "--pool-classes", "50"]
    result = subprocess.run(
        [sys.executable, "-m", "src.bench", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    for key in (
        "framework_pairs_per_s",
        "reference_pairs_per_s",
        "ratio",
        "lightning_overhead",
        "image_major_pairs_per_s",
        "pool_pairs_per_s",
        "pool_peak_mem_mb",
        "epoch_s",
        "device",
    ):
        assert key in figures, key
    assert figures["ratio"] == pytest.approx(
        figures["framework_pairs_per_s"] / figures["reference_pairs_per_s"]
    )
    assert figures["lightning_overhead"] == pytest.approx(
        figures["image_major_pairs_per_s"] / figures["framework_pairs_per_s"]
    )
    assert figures["device"] == "cpu"
    assert figures["deterministic_cost"] == pytest.approx(
        figures["image_major_epoch_s"] / figures["nondeterministic_epoch_s"]
    )
    assert figures["evaluation_float64_cost"] == pytest.approx(
        figures["evaluation_s"] / figures["evaluation_float32_s"]
    )
    # the switch is restored: the benchmark leaves torch as it found it
    assert "deterministic kernels" in result.stdout
