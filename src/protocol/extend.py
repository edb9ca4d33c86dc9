"""No search cut short: a strategy whose chosen epoch count is the epoch cap trains longer.

When the chosen trial's (smoothed) mean validation curve peaks at its last allowed epoch, the
curve may still be rising: the cap, not the data, chose the epoch count. The chosen setting's
validation runs are then repeated with the cap doubled (``protocol.max_epochs`` → 2×, 4×, …, at
most ``protocol.max_epochs_limit``) until the chosen epoch falls below the cap or the limit is
reached. Training does not depend on the cap (no schedule reads it), so the longer curve starts
with the shorter one. Validation folds only, like the search; each extension is saved in
``search/extended/<strategy>_<cap>.json`` and reused by a continued protocol.
"""

from __future__ import annotations

import dataclasses

from src.protocol.inputs import Inputs
from src.protocol.outcomes import Choice, Chosen, SearchResult
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Workspace


def choose(
    settings: ProtocolSettings,
    workspace: Workspace,
    inputs: Inputs,
    studies: dict[str, SearchResult],
) -> Chosen:
    """Each searched row's setting, with the selection window fixed or chosen on held-out
    folds (the method's trials, pooled); validation runs extended where the epoch cap chose
    the epoch (:func:`extend_chosen`)."""
    from src.protocol.selection import choose_trial, selection_window

    pooled = [t for s in settings.strategies for t in studies[s].trials]  # the method's
    window = selection_window(pooled, settings.smoothing)
    chosen = {}
    for name, study in studies.items():
        record = choose_trial(study.trials, window)
        chosen[name] = pick = Choice.from_json(
            {**record, "defaults_curve": study.trials[0]["curve"]}
        )
        workspace.progress(
            f"`{name}`: chose trial {pick.trial + 1} ({settings.selection_metric} "
            f"{pick.score:.4f} with a {window}-epoch window, {pick.best_epoch} epochs)"
        )
    return Chosen(window, extend_chosen(settings, workspace, inputs, chosen, window))


def extend_chosen(
    settings: ProtocolSettings,
    workspace: Workspace,
    inputs: Inputs,
    chosen: dict[str, Choice],
    window: int,
) -> dict[str, Choice]:
    """Every row's choice, with its validation runs extended where the cap chose the epoch;
    each gains ``epoch_cap`` (the last cap its runs had) and ``limit_hit`` (the chosen epoch is
    still the cap at ``protocol.max_epochs_limit``)."""
    from src.protocol.search import score_setting, search_context

    first, limit = settings.max_epochs, settings.epoch_limit
    out = {}
    for name, pick in chosen.items():
        cap = first
        while pick.best_epoch == cap and cap < limit:
            cap = min(2 * cap, limit)
            ctx = dataclasses.replace(
                search_context(settings, inputs, name), max_epochs=cap, smoothing=window
            )
            miner = inputs.miner_cfg(inputs.specs[name][0])
            workspace.progress(
                f"`{name}` chose the last allowed epoch ({pick.best_epoch}): its "
                f"validation runs again with up to {cap} epochs"
            )

            def run(ctx=ctx, values=pick.values, miner=miner) -> dict:
                return score_setting(ctx, values, miner)

            pick = pick.updated(workspace.saved(workspace.extension(name, cap), run))
            workspace.progress(
                f"`{name}`: {settings.selection_metric} {pick.score:.4f} at epoch "
                f"{pick.best_epoch} of {cap}"
            )
        out[name] = dataclasses.replace(pick, epoch_cap=cap, limit_hit=pick.best_epoch == limit)
    return out


def extension_note(settings: ProtocolSettings, chosen: dict[str, Choice]) -> str:
    """``protocol.md``'s lines on extended searches (empty when no cap chose an epoch)."""
    max_epochs = settings.max_epochs
    lines = []
    for name, pick in chosen.items():
        cap = pick.epoch_cap or max_epochs
        if pick.limit_hit:
            lines.append(
                f"- `{name}`: the chosen epoch was the cap up to the limit "
                f"`protocol.max_epochs_limit={cap}`: its validation curve may still be rising "
                "there (raise the limit to train longer)."
            )
        elif cap != max_epochs:
            lines.append(
                f"- `{name}`: the chosen epoch was the cap of {max_epochs}; extended to "
                f"{cap} epochs, it chose epoch {pick.best_epoch} (validation only)."
            )
    return "\n".join(lines)
