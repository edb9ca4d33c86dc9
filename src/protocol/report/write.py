"""``protocol.md`` / ``.csv`` / ``.png``: the table, its answers, and the evidence behind them."""

from __future__ import annotations

from pathlib import Path

from src.protocol.inputs import Inputs
from src.protocol.outcomes import ProtocolResult
from src.protocol.report import evidence, results
from src.protocol.settings import ProtocolSettings
from src.protocol.training import make_pool
from src.protocol.workspace import Workspace


def write_report(
    settings: ProtocolSettings, workspace: Workspace, inputs: Inputs, result: ProtocolResult
) -> Path:
    """Write the three files into the protocol's folder; return the path of ``protocol.md``."""
    from src.protocol.extend import extension_note
    from src.protocol.verdicts import write_comparisons

    folder, p, rows = workspace.folder, settings, result.rows
    results.write_csv(rows, folder / "protocol.csv")
    write_comparisons(result.comparisons, folder / "comparisons.csv")
    resamples, seed, level = p.bootstrap.resamples, p.bootstrap.seed, p.bootstrap.level
    signatures = inputs.data_cfg.get("signatures", "attributes")
    title = f"{inputs.source} · signatures: {signatures}"
    results.plot(rows, title, folder / "protocol.png")
    text = "\n\n".join(
        [
            "# GBU protocol",
            f"Data: {title}. Folds {inputs.folds} (validation, trainval images only); "
            f"seeds {list(p.seeds)}; ≤ {p.max_epochs} epochs; {p.n_trials} trials per "
            f"strategy on `{p.selection_metric}`"
            + (
                f", in each of {p.searches} independent searches (means over searches × seeds)"
                if p.searches > 1
                else ""
            )
            + ". Test metrics: means over seeds with their "
            f"{level:.0%} bootstrap interval in brackets: the test classes resampled with "
            f"replacement ({resamples} resamples, seed {seed}; seen and unseen classes "
            "separately), every seed's refit on the same resamples (pooled); the std over seeds "
            "is in `protocol.csv`. γ of the calibrated metrics fixed from validation. A k-way "
            "tie that holds the true class counts 1/k. `val score`: what chose the row."
            + clip_note(inputs),
            results.markdown_table(rows),
            "Verdicts: each difference with its paired interval (the same class resamples for "
            "both rows; `comparisons.csv` also holds every metric, and images resampled within "
            "classes) and P(X > Y), the share of paired test classes where the first row is "
            "more accurate (ties count 1/2). The verdicts below are one family of tests: each "
            "is **better** or **worse** only when its two-sided bootstrap p-value, "
            f"Holm–Bonferroni-corrected for their number, is below {1 - level:.2g}; otherwise "
            "*no detectable difference*. Rows that are the same predictor (`= …`) are not "
            "compared.",
            results.verdict(
                rows,
                result.best,
                result.pairs,
                result.comparisons,
                level,
                no_training_chosen(settings, result),
            ),
            "## Evidence",
            evidence.diagnosis(result),
            evidence.split_similarity(settings, inputs, result),
            evidence.curves(settings, inputs, result),
            evidence.selection_check(settings, inputs, result),
            "## Settings chosen on validation (epochs: best epoch of the (smoothed) mean curve)",
            "\n".join(f"- `{r['name']}`: {r['chosen']}" for r in rows if r["kind"] == "tuned"),
            search_choices(inputs, result),
            pruning_note(settings, inputs, result),
            extension_note(settings, result.chosen),
            warmup_note(inputs, result),
        ]
    )
    return workspace.write_text("protocol.md", text + "\n")


def search_choices(inputs: Inputs, result: ProtocolResult) -> str:
    """Each search's own choice per searched row (``protocol.searches`` > 1; else empty)."""
    import json

    searches = result.searches
    if len(searches) < 2:
        return ""
    lines = [
        f"## Each search's choice ({len(searches)} searches, seeds "
        f"{[s.seed for s in searches]}; the settings above are the first search's; "
        "`<metric>_search_std` in `protocol.csv` is the spread of the rows over the searches)",
        "",
    ]
    for name in inputs.specs:
        for search in searches:
            pick = search.chosen.choices[name]
            chosen = json.dumps(results.chosen_settings(pick), sort_keys=True)
            lines.append(f"- `{name}`, search seed {search.seed}: val {pick.score:.4f}, {chosen}")
    return "\n".join(lines)


def pruning_note(settings: ProtocolSettings, inputs: Inputs, result: ProtocolResult) -> str:
    """How many trials ``protocol.pruner`` stopped early, per study (empty without a pruner)."""
    if settings.pruner == "none":
        return ""
    searches = result.searches
    n = settings.n_trials
    parts = []
    for name in inputs.specs:
        counts = [search.studies[name].pruned for search in searches]
        parts.append(f"`{name}` {'+'.join(map(str, counts))} of {n * len(searches)}")
    return (
        f"Pruned (`protocol.pruner={settings.pruner}`: stopped below the median of the "
        "finished trials at an epoch, never chosen): " + ", ".join(parts) + " trials."
    )


def no_training_chosen(settings: ProtocolSettings, result: ProtocolResult) -> dict[str, str]:
    """The searched rows whose chosen mean validation curve never rises above the untrained
    metric's validation score, in some search, with the words ``protocol.md`` adds to their
    comparison with ``untrained``. For a mining strategy (the metric starts as the untrained
    metric) that search chose, in effect, no training, so the row's comparisons are partly with
    the untrained metric, whatever its name says."""
    import math

    untrained = result.refs.get("untrained")
    if not untrained or not math.isfinite(untrained.val_score):
        return {}
    level = float(untrained.val_score)
    searches = result.searches
    flat: dict[str, str] = {}
    for name in result.chosen:
        count = 0
        for search in searches:
            curve = [v for v in search.chosen.choices[name].curve if math.isfinite(v)]
            count += bool(curve) and max(curve) <= level
        if not count:
            continue
        where = f" in {count} of {len(searches)} searches" if len(searches) > 1 else ""
        if name in settings.strategies:  # the metric, which starts as the untrained metric
            flat[name] = (
                f"**no training chosen**{where}: its chosen validation curve never rises above "
                f"the untrained metric's validation score ({level:.4f}), where it starts"
            )
        else:  # another model (ALE, DeViSE, SJE, a crossed objective): it trained, from elsewhere
            flat[name] = (
                f"below the untrained metric on validation{where}: its chosen validation curve "
                f"never rises above the untrained metric's score ({level:.4f})"
            )
    return flat


def warmup_note(inputs: Inputs, result: ProtocolResult) -> str:
    """Strategies whose chosen epoch count ends within their random warm-up never mined."""
    notes = []
    for strategy, chosen in result.chosen.items():
        miner = inputs.miner_cfg(inputs.specs[strategy][0])
        warmup = make_pool(miner, seed=0, pool_cfg=inputs.pool).warmup_epochs
        if warmup and chosen.best_epoch <= warmup:
            notes.append(
                f"- `{strategy}` chose {chosen.best_epoch} epoch(s), within its "
                f"{warmup} warm-up epoch(s) of random negatives: it never trained on mined ones."
            )
    return "\n".join(notes)


def clip_note(inputs: Inputs) -> str:
    """The sentence that names CLIP's zero-shot classifier, when the features and the signatures
    are one CLIP model's image and text embeddings (``data.signatures=clip``)."""
    if getattr(inputs.test_dm, "signature_kind", "") != "clip":
        return ""
    model = inputs.data_cfg.get("clip", {}).get("model", "")
    return (
        f" The image features and the class signatures are the image and text embeddings of "
        f"one CLIP model (open_clip:{model}): `nearest_signature` is CLIP's zero-shot "
        "classifier, and the metric starts from it (W = I)."
    )
