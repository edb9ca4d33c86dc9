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

from src.protocol.contract import ProtocolRun


def extend_chosen(protocol: ProtocolRun, chosen: dict[str, dict]) -> dict[str, dict]:
    """Every strategy's choice, with its validation runs extended where the cap chose the epoch;
    each gains ``epoch_cap`` (the last cap its runs had) and ``limit_hit`` (the chosen epoch is
    still the cap at ``protocol.max_epochs_limit``)."""
    from src.protocol.search import score_setting

    settings = protocol.settings
    first, limit = settings.max_epochs, settings.epoch_limit
    out = {}
    for strategy, pick in chosen.items():
        cap = first
        while pick["best_epoch"] == cap and cap < limit:
            cap = min(2 * cap, limit)
            ctx = dataclasses.replace(
                protocol.context(strategy), max_epochs=cap, smoothing=protocol.window
            )
            miner = protocol.miner_cfg(protocol.specs[strategy][0])
            protocol.progress(
                f"`{strategy}` chose the last allowed epoch ({pick['best_epoch']}): its "
                f"validation runs again with up to {cap} epochs"
            )

            def run(ctx=ctx, values=pick["values"], miner=miner) -> dict:
                return score_setting(ctx, values, miner)

            workspace = protocol.workspace
            longer = workspace.saved(workspace.extension(strategy, cap), run)
            pick = {**pick, **longer}
            protocol.progress(
                f"`{strategy}`: {settings.selection_metric} {pick['score']:.4f} at epoch "
                f"{pick['best_epoch']} of {cap}"
            )
        out[strategy] = {**pick, "epoch_cap": cap, "limit_hit": pick["best_epoch"] == limit}
    return out


def extension_note(protocol: ProtocolRun) -> str:
    """``protocol.md``'s lines on extended searches (empty when no cap chose an epoch)."""
    max_epochs = protocol.settings.max_epochs
    lines = []
    for strategy, pick in protocol.chosen.items():
        cap = pick.get("epoch_cap", max_epochs)
        if pick.get("limit_hit"):
            lines.append(
                f"- `{strategy}`: the chosen epoch was the cap up to the limit "
                f"`protocol.max_epochs_limit={cap}`: its validation curve may still be rising "
                "there (raise the limit to train longer)."
            )
        elif cap != max_epochs:
            lines.append(
                f"- `{strategy}`: the chosen epoch was the cap of {max_epochs}; extended to "
                f"{cap} epochs, it chose epoch {pick['best_epoch']} (validation only)."
            )
    return "\n".join(lines)
