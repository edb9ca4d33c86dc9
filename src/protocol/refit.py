"""Stage 3 of the protocol: every searched row refitted on trainval with its chosen setting,
once per seed of ``protocol.seeds``, and tested once (γ fixed from validation). Each refit is
saved in ``refit/<row>/seed<k>.json`` with its checkpoint and kept test distances (the same
stem), so a continued protocol refits only what it lacks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.protocol.inputs import Inputs
from src.protocol.model_kinds import model_kinds
from src.protocol.outcomes import Choice, RowRefits
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Workspace


@dataclass
class PlannedRefit:
    """One row to refit: the row, its strategy (the miner), the choice, model and kind."""

    name: str
    strategy: str
    choice: Choice
    model: Any  # the model config (DictConfig)
    kind: str  # tuned | reference | ablation


def refit_plan(
    settings: ProtocolSettings,
    inputs: Inputs,
    chosen: dict[str, Choice],
    scores: dict[str, float] | None = None,
) -> list[PlannedRefit]:
    """Every refit, in the table's order: the searched rows, then the ablation (``random`` at
    the best mined strategy's setting; best by ``scores``, the mean validation score over the
    searches, default this search's)."""
    trained = model_kinds().trained
    plan = [
        PlannedRefit(name, strategy, chosen[name], model,
                     "reference" if name in trained else "tuned")
        for name, (strategy, model) in inputs.specs.items()
    ]  # fmt: skip
    mined = settings.mined
    scores = scores or {s: chosen[s].score for s in settings.strategies}
    if settings.ablation and mined:
        best_mined = max(mined, key=lambda s: scores[s])
        plan.append(
            PlannedRefit(
                f"random@{best_mined}", "random", chosen[best_mined], inputs.model, "ablation"
            )
        )
    return plan


def refit_row(
    settings: ProtocolSettings,
    workspace: Workspace,
    inputs: Inputs,
    planned: PlannedRefit,
    seeds: Sequence[int] | None = None,
) -> RowRefits:
    """The refits of one planned row on trainval, one per seed (``seeds``: a worker's share of
    ``protocol.seeds``), each tested once: their test metrics, in seed order (one search)."""
    from src.protocol.search import apply
    from src.protocol.training import final_metrics

    name, choice = planned.name, planned.choice
    seeds = list(settings.seeds) if seeds is None else list(seeds)
    workspace.progress.stage(f"refit `{name}` on trainval for seeds {seeds}, then test")
    values = dict(choice.values)
    miner = inputs.miner_cfg(planned.strategy)
    if "temperature" not in miner:
        values.pop("miner.temperature", None)
    data, model_cfg, miner = apply(values, planned.model, miner)
    runs = []
    for seed in seeds:

        def run(seed: int = int(seed)) -> dict:
            dm = inputs.data.get("test", inputs.folds[0], seed, data)
            return final_metrics(
                dm,
                model_cfg,
                miner,
                inputs.trainer,
                int(choice.best_epoch),
                seed,
                choice.gamma,
                keep=workspace.refit(name, seed).with_suffix(""),
                pool_cfg=inputs.pool,
            )

        runs.append(workspace.saved(workspace.refit(name, seed), run))
        workspace.progress(f"`{name}` seed {seed}: test ZSL {runs[-1]['test/zsl_acc']:.4f}")
    return RowRefits(name, planned.kind, [runs])


def as_task(planned: PlannedRefit) -> tuple:
    """The picklable fields of a planned refit, for a worker (:func:`from_task`)."""
    model = OmegaConf.to_container(planned.model, resolve=True)
    return planned.name, planned.strategy, planned.choice.to_json(), model, planned.kind


def from_task(name: str, strategy: str, choice: dict, model: dict, kind: str) -> PlannedRefit:
    config: DictConfig = OmegaConf.create(model)
    return PlannedRefit(name, strategy, Choice.from_json(choice), config, kind)
