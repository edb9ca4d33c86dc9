"""``protocol.md``'s evidence: where the chosen strategy and the best reference differ class by
class, how alike the validation and test splits are, the validation curves, and the selection
rule checked on held-out validation folds."""

from __future__ import annotations

from typing import Any

import torch

from src.protocol.inputs import Inputs
from src.protocol.outcomes import ProtocolResult
from src.protocol.report import results
from src.protocol.settings import ProtocolSettings


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
