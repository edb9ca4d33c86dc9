"""``protocol.md`` / ``.csv`` / ``.png``: the table, its answers, and the evidence behind them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from src.protocol.inputs import Inputs
from src.protocol.outcomes import ProtocolResult
from src.protocol.report import results
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
            diagnosis(result),
            split_similarity(settings, inputs, result),
            curves(settings, inputs, result),
            selection_check(settings, inputs, result),
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
        counts = [search.searches[name].pruned for search in searches]
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


def diagnosis(result: ProtocolResult) -> str:
    """Where the best tuned strategy and the best reference differ, class by class."""
    ref = results.best_reference(result.rows)  # chosen on validation, like everything else
    if ref is None:
        return "No reference in this protocol: no per-class comparison."
    best = next(r for r in result.rows if r["name"] == result.best)
    runs = result.runs
    return "\n\n".join(
        [
            f"Per unseen class (test ZSL), `{result.best}` against `{ref['name']}` (the "
            "reference with the best validation score), the "
            "classes that differ most (a class weighs 1/(number of unseen classes) in the mean):",
            results.per_class_differences(best, ref, runs[result.best], runs[ref["name"]]),
        ]
    )


def split_similarity(
    settings: ProtocolSettings, inputs: Inputs, result: ProtocolResult, near: float = 0.9
) -> str:
    """How alike the unseen classes of each validation fold and of test are (signature cosine),
    beside the validation gain of the chosen setting over the untrained metric per fold.

    Validation can only predict test when its unseen classes are as hard to tell apart as the
    test ones; near-duplicate signatures (cosine > ``near``) are where ZSL errors concentrate.
    """
    best = result.chosen[result.best]
    untrained = result.refs.get("untrained")
    metric = settings.selection_metric
    lines = [
        f"Unseen classes of each split: pairs of near-duplicate signatures (cosine > {near}), "
        "mean cosine of each unseen class to its most similar unseen class, and (validation) "
        f"`{metric}` of the untrained metric and of `{result.best}`'s chosen setting:",
        "",
        "| split | unseen classes | near-duplicate pairs | mean nearest cosine | untrained "
        f"| `{result.best}` |",
        "|---|---|---|---|---|---|",
    ]
    for i, fold in enumerate(inputs.folds):
        dm = inputs.data.get("val", fold, inputs.seed, {})
        pairs, nearest = _similarity(dm, near)
        before = untrained.val[i][metric] if untrained else float("nan")
        lines.append(
            f"| val fold {fold} | {len(dm.unseen_classes)} | {pairs} | {nearest:.3f} | "
            f"{before:.3f} | {best.fold_scores[i]:.3f} |"
        )
    pairs, nearest = _similarity(inputs.test_dm, near)
    lines.append(f"| test | {len(inputs.test_dm.unseen_classes)} | {pairs} | {nearest:.3f} | | |")
    return "\n".join(lines)


def _similarity(datamodule: Any, near: float) -> tuple[int, float]:
    signatures = torch.nn.functional.normalize(datamodule.signatures.float(), dim=1)
    unseen = signatures[datamodule.unseen_classes.cpu()]
    cosine = (unseen @ unseen.T).fill_diagonal_(-1.0)
    return int((cosine > near).sum()) // 2, float(cosine.max(1).values.mean())


def curves(settings: ProtocolSettings, inputs: Inputs, result: ProtocolResult) -> str:
    """Mean validation curves (epochs 1…E) of each strategy's defaults and chosen trial."""
    p = settings
    untrained = result.refs.get("untrained")
    head = f"Validation curves, `{p.selection_metric}` after epochs 1…{p.max_epochs}, mean over "
    head += f"folds {inputs.folds}"
    if untrained:
        head += f"; the untrained metric scores {untrained.val_score:.3f}"
    lines = [head + ":", ""]
    for strategy, chosen in result.chosen.items():
        for label, curve in (("defaults", chosen.defaults_curve), ("chosen", chosen.curve)):
            lines.append(f"- `{strategy}`, {label}: " + " ".join(f"{v:.3f}" for v in curve))
    return "\n".join(lines)


def selection_check(settings: ProtocolSettings, inputs: Inputs, result: ProtocolResult) -> str:
    """The epoch/trial selection rule, checked on validation alone: choose on all folds but
    one, score on the held-out fold (mean over the held-out folds), raw curve against the
    smoothed one, per strategy and for all strategies' trials together."""
    from src.protocol.selection import held_out_check

    windows = sorted({1, 3, result.window})
    head = " | ".join(f"moving average of {w}" if w > 1 else "raw curve" for w in windows)
    lines = [
        "Selection rule checked on held-out validation folds (choose trial and epoch on the "
        "other folds, score the held-out fold; mean over folds):",
        "",
        f"| trials of | {head} |",
        "|---|" + "---|" * len(windows),
    ]
    trials = result.searches[0].trials
    groups = {f"`{s}`": t for s, t in trials.items()}
    groups["all strategies"] = [t for row in trials.values() for t in row]
    for name, trials in groups.items():
        values = [held_out_check(trials, w) for w in windows]
        scores = " | ".join("– (needs ≥ 2 folds)" if v != v else f"{v:.3f}" for v in values)
        lines.append(f"| {name} | {scores} |")
    setting = settings.smoothing
    how = "chosen by this check (all strategies)" if setting == "auto" else "as configured"
    if setting == "auto" and len(inputs.folds) < 2:
        how = "the raw curve: the check needs ≥ 2 folds"
    lines += [
        "",
        f"Window used: {result.window} epoch(s), {how} (`protocol.smoothing={setting}`).",
    ]
    return "\n".join(lines)


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
