"""scripts/protocol_stages.py: where a protocol's time went, read from its protocol.log (the
README's per-stage table comes from it)."""

from __future__ import annotations

import pytest
from cli_utils import load_script

STEPS = [  # (time, logger, stage label, message) of protocol.log lines
    (
        "10:00:00,000",
        "src.protocol",
        "stage 0/9 · 0 s",
        "5 tasks on 2 local workers: search random, …",
    ),
    ("10:00:01,000", "src.data.cache", None, "Loaded APY-annotations from the cache x.npz"),
    (
        "10:00:02,000",
        "src.protocol",
        "search random · 0 s",
        "trial 1/2 · val/zsl_acc 0.8 at epoch 1 · 5.5 s",
    ),
    (
        "10:00:04,000",
        "src.protocol",
        "search random · 2 s",
        "trial 2/2 pruned: pruned at step 2 (fold epoch 3) · 1.5 s",
    ),
    (
        "10:00:05,000",
        "src.protocol",
        "search random · 3 s",
        "search seed 1: trial 1/2 · val/zsl_acc 0.7 at epoch 4 · 4.0 s",
    ),
    (
        "10:00:06,000",
        "src.protocol",
        "reference eszsl · 6 s",
        "references: eszsl (preprocessing on validation)",
    ),
    (
        "10:00:09,500",
        "src.protocol",
        "reference eszsl · 9 s",
        "eszsl: val 0.7339 with standardise=True",
    ),
    (
        "10:01:00,000",
        "src.protocol",
        "stage 1/9 · 60 s",
        "references: eszsl (preprocessing on validation)",
    ),
    (
        "10:01:10,000",
        "src.protocol",
        "stage 4/9 · 70 s",
        "2 tasks on 2 local workers: refit random, refit random",
    ),
    (
        "10:01:10,500",
        "src.protocol",
        "refit random seed 1 · 70 s",
        "refit `random` on trainval for seeds [1], then test",
    ),
    (
        "10:01:11,000",
        "src.protocol",
        "refit random seed 1 · 70 s",
        "search seed 1: refit `random` on trainval for seeds [1], then test",
    ),
    (
        "10:01:12,500",
        "src.protocol",
        "refit random seed 1 · 72 s",
        "`random` seed 1: test ZSL 0.81",
    ),
    (
        "10:01:14,000",
        "src.protocol",
        "refit random seed 1 · 74 s",
        "search seed 1: `random` seed 1: test ZSL 0.80",
    ),
    (
        "10:01:20,000",
        "src.protocol",
        "stage 8/9 · 80 s",
        "bootstrap intervals and paired comparisons",
    ),
    ("10:01:50,000", "src.protocol", "stage 9/9 · 110 s", "protocol.md written"),
]
LOG = "".join(
    f"[2026-12-07 {t}][{logger}][INFO] - " + (f"[{label}] " if label else "") + f"{msg}\n"
    for t, logger, label, msg in STEPS
)


def test_stage_walls_and_the_work_inside_them_come_from_the_log(tmp_path, capsys):
    (tmp_path / "protocol.log").write_text(LOG)
    (result,) = load_script("protocol_stages").main([str(tmp_path)])
    assert result["wall_s"] == 110
    assert result["stages_wall_s"] == {
        "first wave: searches and references": 60,
        "epoch-cap extensions": 10,
        "refits": 10,
        "bootstrap, verdicts, files": 30,
    }
    assert result["searches"] == {
        "0": {"trials": 2, "work_s": pytest.approx(7.0), "pruned": 1},
        "1": {"trials": 1, "work_s": pytest.approx(4.0), "pruned": 0},
    }
    assert result["references_work_s"] == 3.5
    # the two searches' refits of the same row and seed are told apart by their prefix
    assert result["refits"] == 2 and result["refits_work_s"] == pytest.approx(2.0 + 3.0)
    assert "| **total** | **110 s** | |" in capsys.readouterr().out


def test_a_folder_without_a_protocol_log_is_named_in_one_line(tmp_path):
    with pytest.raises(SystemExit, match=r"no protocol.log: give a protocol run folder"):
        load_script("protocol_stages").main([str(tmp_path)])
