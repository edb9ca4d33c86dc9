"""What makes a protocol's verdicts citable: intervals, comparisons, kept models and
predictions that recompute the table, searches not cut short by the epoch cap."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from cli_utils import run_cli
from hydra_utils import compose_config

from src.protocol import Protocol, check_same_config
from src.protocol.extend import extend_chosen, extension_note
from src.protocol.outcomes import Choice, ReferenceResult
from src.protocol.references import evaluate_references
from src.protocol.report import recompute
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Progress, Workspace

TINY = [
    "protocol.n_trials=2",
    "protocol.searches=1",  # the default is 3
    "protocol.max_epochs=3",
    "protocol.seeds=[1,2]",
    "protocol.strategies=[random,hardest]",
    "protocol.references=[nearest_signature,eszsl,untrained]",  # the trained ones: own test
    "protocol.bootstrap.resamples=300",
]
METRICS = ("zsl_acc", "gzsl_s", "gzsl_u", "gzsl_H", "gzsl_H_cal", "ausuc")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("verdicts") / "run"
    cfg = compose_config(TINY, folder, config_name="protocol")
    check_same_config(cfg, folder)
    protocol = Protocol(cfg)
    protocol.report(protocol.run())
    return folder


def rows_of(folder: Path) -> dict[str, dict]:
    with (folder / "protocol.csv").open() as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def test_every_row_and_metric_has_its_interval(run):
    for name, row in rows_of(run).items():
        for metric in METRICS:
            low = float(row[f"test/{metric}_ci_low"])
            high = float(row[f"test/{metric}_ci_high"])
            assert 0.0 <= low <= high <= 1.0, (name, metric)
        # a row of two refits whose seeds differ still has a spread from the classes
        assert float(row["test/zsl_acc_ci_high"]) > float(row["test/zsl_acc_ci_low"])


def test_comparisons_hold_each_stated_comparison_paired(run):
    rows = rows_of(run)
    with (run / "comparisons.csv").open() as f:
        records = list(csv.DictReader(f))
    assert list(records[0]) == [
        "row", "against", "metric", "delta", "ci_low", "ci_high", "share_positive", "p_value",
        "stated", "p_holm", "prob_improvement", "prob_improvement_ci_low",
        "prob_improvement_ci_high", "resampled",
    ]  # fmt: skip
    pairs = {(r["row"], r["against"]) for r in records}
    assert ("hardest", "random") in pairs and ("hardest", "random@hardest") in pairs
    assert len({p[0] for p in pairs if p[1] == "eszsl"}) == 1  # the best tuned row
    # does training help? every trained row (tuned, or a fitted reference) faces `untrained`
    assert {p[0] for p in pairs if p[1] == "untrained"} == {"eszsl", "hardest", "random"}
    assert {r["resampled"] for r in records} == {"classes", "images"}
    for r in records:
        a, b, metric = rows[r["row"]], rows[r["against"]], r["metric"]
        assert float(r["delta"]) == pytest.approx(float(a[metric]) - float(b[metric]))
        assert float(r["ci_low"]) <= float(r["ci_high"])
        assert 0.0 <= float(r["share_positive"]) <= 1.0 and 0.0 < float(r["p_value"]) <= 1.0
    # AUSUC is resampled over classes only
    assert not [r for r in records if r["metric"] == "test/ausuc" and r["resampled"] == "images"]
    md = (run / "protocol.md").read_text()
    verdicts = [
        line for line in md.splitlines() if line.lstrip().startswith("- `") and " vs " in line
    ]
    assert len([line for line in verdicts if "vs `untrained`" in line]) == 3
    for line in verdicts:
        words = ("**better**", "**worse**", "**no detectable difference**", "not a verdict")
        assert any(w in line for w in words), line
    # one family: the stated records' p_holm are Holm's adjustment of their p-values
    stated = [r for r in records if r["stated"] == "True"]
    assert len(stated) == 2 * len({(r["row"], r["against"]) for r in stated})  # ZSL, H_cal
    from src.metrics.bootstrap import holm

    p = [float(r["p_value"]) for r in stated]
    assert [float(r["p_holm"]) for r in stated] == pytest.approx(holm(p))


def test_recompute_reproduces_every_row_from_the_folder(run, capsys):
    assert recompute.main([str(run)]) == 0
    out = capsys.readouterr().out
    assert out.count("matches protocol.csv") == len(rows_of(run))


def test_recompute_reports_a_row_that_differs(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    text = (copy / "protocol.csv").read_text().splitlines()
    header, rows = text[0].split(","), list(csv.reader(text[1:]))
    column = header.index("test/zsl_acc_ci_low")
    hardest = next(r for r in rows if r[0] == "hardest")
    hardest[column] = "0.123"
    with (copy / "protocol.csv").open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    assert recompute.main([str(copy), "--row", "hardest"]) == 1
    assert "DIFFERS: test/zsl_acc_ci_low" in capsys.readouterr().out


def test_recompute_names_a_truncated_kept_file_and_checks_the_other_rows(run, tmp_path, capsys):
    """Issue 38: a refit's .npz cut short (a copy between machines that stopped half-way) ends
    in one line naming the file and the row it leaves unchecked, exit status 1; every other
    row is still recomputed, and nothing in the folder changes."""
    copy = copied(run, tmp_path)
    damaged = copy / "refit" / "hardest" / "seed2.npz"
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    line, out = recompute_refusing_one_row(run, copy, "hardest", capsys)
    assert line.startswith(f"Error: {damaged}: damaged or not a kept evaluation (BadZipFile")
    assert not any(row.startswith("hardest:") for row in out.splitlines())


def copied(run: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def recompute_refusing_one_row(run: Path, copy: Path, row: str, capsys) -> tuple[str, str]:
    """Recompute ``copy``: exit 1, one error line ending with ``row`` unchecked, every other row
    matching, nothing in the folder changed; (the error line, the output)."""
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert recompute.main([str(copy)]) == 1
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.endswith(f"Row `{row}` cannot be checked.")
    assert captured.out.count("matches protocol.csv") == len(rows_of(run)) - 1
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before
    return line, captured.out


def test_a_kept_file_from_another_test_set_is_named_by_recompute_and_a_continued_protocol(
    run, tmp_path, capsys
):
    """Issue 38: a refit's .npz copied in from another run (here: one class renamed) is named in
    one line, never a shape error inside the bootstrap; recompute checks the other rows."""
    from src.protocol.kept import KeptFileError

    copy = copied(run, tmp_path)
    foreign = copy / "refit" / "random" / "seed1.npz"
    with np.load(foreign) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["class_names"] = np.array(["elsewhere", *arrays["class_names"][1:]])
    with foreign.open("wb") as f:
        np.savez_compressed(f, **arrays)
    line, _ = recompute_refusing_one_row(run, copy, "random", capsys)
    assert line.startswith(f"Error: {foreign}: scored on another test set than the other ")
    protocol = Protocol(compose_config(TINY, copy, config_name="protocol"))
    with pytest.raises(KeptFileError, match=f"^{foreign}: scored on another test set"):
        protocol.run()


@pytest.mark.slow
@pytest.mark.parametrize("kept", ["refit/hardest/seed2", "references/eszsl"])
def test_src_eval_of_a_kept_checkpoint_reproduces_its_test_metrics(run, kept, tmp_path):
    saved = json.loads((run / f"{kept}.json").read_text())
    saved = saved.get("test", saved)
    run_cli("src.eval", [f"ckpt_path={run / kept}.ckpt", f"hydra.run.dir={tmp_path / 'eval'}"])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in ("test/zsl_acc", "test/gzsl_H", "test/gzsl_H_cal", "test/gamma", "test/ausuc"):
        assert metrics[key] == saved[key], key  # exactly: same weights, data, γ


def _fake_stage(tmp_path: Path, max_epochs: int, limit: int):
    """(settings, workspace, inputs) of an extension, its validation runs faked."""
    settings = ProtocolSettings.from_config(
        {"strategies": ["hardest", "random"], "max_epochs": max_epochs, "max_epochs_limit": limit}
    )
    inputs = SimpleNamespace(specs={name: (name, None) for name in ("hardest", "random")})
    inputs.miner_cfg = lambda name: {}
    return settings, Workspace(tmp_path, Progress(stages=1)), inputs


def _choice(best_epoch: int, score: float) -> Choice:
    return Choice(values={}, trial=0, score=score, best_epoch=best_epoch, gamma=0.0,
                  fold_scores=[score], curve=[])  # fmt: skip


@dataclasses.dataclass
class FakeContext:
    """What an extension changes in a search context: the epoch cap and the window."""

    max_epochs: int
    smoothing: int = 1


def _fake_context(monkeypatch, max_epochs: int) -> None:
    context = lambda settings, inputs, name=None: FakeContext(max_epochs)  # noqa: E731
    monkeypatch.setattr("src.protocol.search.search_context", context)


def test_a_choice_at_the_epoch_cap_is_extended_until_it_falls_below(tmp_path, monkeypatch):
    """Curves rising to epoch 8, flat after: cap 3 → 6 (still the cap) → 12 (chooses 8)."""
    caps = []

    def score_setting(ctx, values, miner):
        caps.append(ctx.max_epochs)
        curve = [min(e, 8) / 10 for e in range(1, ctx.max_epochs + 1)]
        best = curve.index(max(curve))
        return {"score": curve[best], "best_epoch": best + 1, "curve": curve}

    monkeypatch.setattr("src.protocol.search.score_setting", score_setting)
    _fake_context(monkeypatch, 3)
    settings, workspace, inputs = _fake_stage(tmp_path, 3, 60)
    chosen = {"hardest": _choice(3, 0.3), "random": _choice(2, 0.5)}
    out = extend_chosen(settings, workspace, inputs, chosen, window=1)
    assert caps == [6, 12]  # random (epoch 2 < cap 3) is not extended
    assert out["hardest"].best_epoch == 8 and out["hardest"].epoch_cap == 12
    assert not out["hardest"].limit_hit and out["random"].epoch_cap == 3
    assert out["hardest"].curve == [min(e, 8) / 10 for e in range(1, 13)]  # the longer run's
    assert (tmp_path / "search" / "extended" / "hardest_12.json").is_file()
    assert "extended to 12 epochs, it chose epoch 8" in extension_note(settings, out)
    # a continued protocol reads the saved extensions back: no validation run again
    again = extend_chosen(settings, workspace, inputs, chosen, window=1)
    assert caps == [6, 12] and again == out


def test_the_limit_stops_an_extension_and_protocol_md_says_so(tmp_path, monkeypatch):
    def score_setting(ctx, values, miner):  # always best at the last epoch
        return {"score": 1.0, "best_epoch": ctx.max_epochs, "curve": []}

    monkeypatch.setattr("src.protocol.search.score_setting", score_setting)
    _fake_context(monkeypatch, 4)
    settings, workspace, inputs = _fake_stage(tmp_path, 4, 10)
    out = extend_chosen(settings, workspace, inputs, {"hardest": _choice(4, 0.3)}, window=1)
    assert out["hardest"].epoch_cap == 10 and out["hardest"].limit_hit
    assert "protocol.max_epochs_limit=10" in extension_note(settings, out)
    assert math.isfinite(out["hardest"].score)


def test_references_get_their_own_preprocessing_search(tmp_path):
    """Each untrained reference tries every preprocessing on validation; the chosen one is in
    its saved record and its row's ``chosen`` column."""
    cfg = compose_config(
        [*TINY, "protocol.references=[eszsl,sae,untrained]"], tmp_path, config_name="protocol"
    )
    protocol = Protocol(cfg)
    refs = evaluate_references(protocol.settings, protocol.workspace, protocol.inputs)
    assert set(refs) == {"eszsl", "sae", "untrained"}
    for record in refs.values():
        assert len(record.searched) == 6  # 3 feature options × L2 of signatures or not
        best = max(t["val_score"] for t in record.searched)
        assert record.val_score == best
        assert (tmp_path / "references").is_dir()
    saved = json.loads((tmp_path / "references" / "eszsl.json").read_text())
    assert ReferenceResult.from_json(saved) == refs["eszsl"]  # what a continued protocol reads


@pytest.mark.slow
def test_on_apy_the_eszsl_search_reaches_the_standardised_setting(tmp_path, real_data):
    """Issue 18: on the metric's preprocessing (L2 features) ESZSL scored test ZSL 0.44 on APY;
    its own validation search picks standardised features (measured: test ZSL 0.596 with γ, λ
    chosen on the mean of folds 1–3; 0.645 when chosen on fold 1 alone)."""
    from test_defaults import APY_FILES

    real_data(*APY_FILES)
    cfg = compose_config(
        ["data=apy_annotations", "protocol.references=[eszsl]"], tmp_path, config_name="protocol"
    )
    protocol = Protocol(cfg)
    record = evaluate_references(protocol.settings, protocol.workspace, protocol.inputs)["eszsl"]
    assert record.data["standardise"] is True and record.data["l2_features"] is False
    assert record.test["test/zsl_acc"] >= 0.55


def test_objectives_cross_the_strategies_and_trained_references_are_refitted(tmp_path):
    """``protocol.objectives=[metric,ale]``: ALE rows per strategy, compared with ALE's random
    row; ``references=[devise]``: DeViSE searched and refitted with every seen class negative."""
    cfg = compose_config(
        [
            "protocol.n_trials=1",
            "protocol.searches=1",  # the default is 3
            "protocol.max_epochs=2",
            "protocol.max_epochs_limit=2",
            "protocol.seeds=[1]",
            "protocol.strategies=[random,hardest]",
            "protocol.objectives=[metric,ale]",
            "protocol.references=[devise]",
            "protocol.bootstrap.resamples=200",
        ],
        tmp_path,
        config_name="protocol",
    )
    check_same_config(cfg, tmp_path)
    protocol = Protocol(cfg)
    protocol.report(protocol.run())
    rows = rows_of(tmp_path)
    assert {"ale-random", "ale-hardest", "devise"} <= set(rows)
    assert rows["devise"]["kind"] == "reference" and rows["ale-hardest"]["kind"] == "tuned"
    assert "model.margin" in json.loads(rows["ale-hardest"]["chosen"])
    with (tmp_path / "comparisons.csv").open() as f:
        pairs = {(r["row"], r["against"]) for r in csv.DictReader(f)}
    assert ("ale-hardest", "ale-random") in pairs
    assert {b for a, b in pairs if a in ("random", "hardest")} >= {"devise"}  # best vs refs
    assert (tmp_path / "refit" / "devise" / "seed1.ckpt").is_file()
    assert float(rows["ale-hardest"]["test/zsl_acc"]) >= 0.5  # chance: 0.1


def test_the_docs_table_is_regenerated_from_the_run_folder(run, capsys):
    """``python -m src.protocol.report.table``: protocol.md's table, under the line naming the
    command and the commit that produced it; a folder without protocol.csv in one line."""
    from src.protocol.report.table import main

    main([str(run)])
    first, table_text = capsys.readouterr().out.split("\n\n", 1)
    assert table_text.strip() and table_text.strip() in (run / "protocol.md").read_text()
    with (run / "protocol.csv").open() as f:
        code = json.loads(next(csv.DictReader(f))["code"])
    assert "`python -m src.protocol`" in first
    assert f"commit `{str(code.get('commit'))[:7]}`" in first
    with pytest.raises(SystemExit, match=r"protocol\.csv: no such file"):
        main([str(run / "elsewhere")])


def test_the_docs_tables_provenance_names_the_overrides_data_and_a_dirty_checkout(tmp_path):
    from src.protocol.report.table import provenance

    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "overrides.yaml").write_text(
        "- data=apy_annotations\n- protocol.workers=2\n- hydra.run.dir=somewhere\n"
    )
    (tmp_path / "protocol_config.yaml").write_text(
        "data:\n  dataset: APY\n  signatures: original_att\nseed: 0\n"
    )
    code = json.dumps({"commit": "0123456789abcdef", "dirty": True})
    line = provenance(tmp_path, [{"code": code}, {"code": code}])
    assert line == (
        "*Data: APY (signatures: original_att); `python -m src.protocol data=apy_annotations "
        "protocol.workers=2`; commit `0123456` with uncommitted changes.*"
    )
    other = json.dumps({"commit": "fedcba9876543210", "dirty": False})
    assert "rows from several commits" in provenance(tmp_path, [{"code": code}, {"code": other}])
