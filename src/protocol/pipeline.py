"""The protocol's run: its stages in order (:class:`Protocol`; the job of ``python -m
src.protocol`` is :func:`src.protocol.run`).

Each stage is a function of ``(settings, workspace, inputs, …)`` that returns a result
dataclass (:mod:`src.protocol.outcomes`) and saves what it computed in the workspace, so that
a continued protocol skips it:

- references: :func:`~src.protocol.references.evaluate_references` → ``ReferenceResult`` each;
- search, per row: :func:`~src.protocol.search.search_row` → ``SearchResult``;
- choice and extension: :func:`~src.protocol.extend.choose` → ``Chosen``;
- refits, per row: :func:`~src.protocol.refit.refit_row` → ``RowRefits``;
- verdicts: :func:`~src.protocol.verdicts.intervals_and_comparisons` → ``Verdicts``;
- report: :func:`~src.protocol.report.write.write_report` → the path of ``protocol.md``.

:class:`Protocol` only orders them, over ``protocol.searches`` independent searches, and hands
the independent steps (studies, untrained references, refits) to the :class:`Executor`, whose
workers run :func:`run_step` and save the same files as the serial run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.protocol.executor import Executor, log_to
from src.protocol.inputs import Inputs
from src.protocol.outcomes import ProtocolResult, RowRefits, SearchOutcome
from src.protocol.settings import ProtocolSettings
from src.protocol.workspace import Progress, Workspace


@dataclass
class Search:
    """One of the protocol's independent searches: its settings, folder and inputs."""

    settings: ProtocolSettings
    workspace: Workspace
    inputs: Inputs


class Protocol:
    """The stages of one protocol run, each skipped when its results are already saved."""

    def __init__(self, cfg: DictConfig, quiet: bool = False) -> None:
        """``quiet``: a worker's Protocol (:func:`run_step`), which says nothing the main
        process says too (the folds' note)."""
        from src.protocol.training import quiet_lightning

        quiet_lightning()
        self.cfg = cfg
        self.settings = settings = ProtocolSettings.from_config(cfg.protocol)
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        self.folder = Path(cfg.paths.output_dir)
        self.inputs = Inputs.from_config(cfg, settings, quiet=quiet)
        ablation = int(settings.ablation and bool(settings.mined))
        stages = 3 + settings.searches * (2 * len(self.inputs.specs) + ablation)
        self.progress = Progress(stages)
        self.workspace = Workspace(self.folder, self.progress)
        self.executor: Executor | None = None  # runs the independent steps (main process)
        self.searches: dict[int, Search] = {
            self.inputs.seed: Search(settings, self.workspace, self.inputs)
        }

    # ------------------------------------------------------------------- search replicates
    def search_seeds(self) -> list[int]:
        """The seed of each search (``protocol.searches``): ``seed``, ``seed + 1``, …"""
        return [self.inputs.seed + k for k in range(self.settings.searches)]

    def search(self, seed: int) -> Search:
        """The search with seed ``seed``: this protocol's own for its seed, else the same
        config with that seed, in ``searches/seed<seed>/`` (its studies, extensions, refits and
        kept predictions), sharing this one's data."""
        if seed not in self.searches:
            config = OmegaConf.to_container(self.cfg, resolve=True)
            config["seed"] = seed
            config["paths"]["output_dir"] = str(self.folder / "searches" / f"seed{seed}")
            config["protocol"]["searches"] = 1
            cfg = OmegaConf.create(config)
            settings = ProtocolSettings.from_config(cfg.protocol)
            inputs = Inputs.from_config(cfg, settings, data=self.inputs.data, quiet=True)
            progress = self.progress.child(f"search seed {seed}: ")
            folder = Path(cfg.paths.output_dir)
            self.searches[seed] = Search(settings, Workspace(folder, progress), inputs)
        return self.searches[seed]

    # ------------------------------------------------------------------------------ stages
    def run(self) -> ProtocolResult:
        try:
            return self._run()
        finally:
            if self.executor is not None:
                self.executor.close()

    def run_steps(self, tasks: list[tuple]) -> None:
        """Run ``tasks`` (:func:`run_step`) on the configured workers, each saving its result."""
        if self.executor is None:
            self.executor = Executor(self.settings, self.cfg, self.folder, self.progress)
        self.executor.run(run_step, tasks)

    def _run(self) -> ProtocolResult:
        from src.protocol.extend import choose
        from src.protocol.model_kinds import model_kinds
        from src.protocol.references import evaluate_references, reference_rows
        from src.protocol.refit import as_task, refit_plan, refit_row
        from src.protocol.report.results import add_search_spread, chosen_settings, summarise
        from src.protocol.search import search_row
        from src.protocol.verdicts import intervals_and_comparisons

        settings, specs = self.settings, self.inputs.specs
        searches = [self.search(seed) for seed in self.search_seeds()]  # this one first
        if settings.parallel:  # every study and untrained reference, concurrently
            kinds = model_kinds()
            untrained = [("reference", n) for n in settings.references if n in kinds.untrained]
            studies = [("search", name, s.inputs.seed) for s in searches for name in specs]
            self.run_steps(studies + untrained)
        refs = evaluate_references(settings, self.workspace, self.inputs)
        runs = {name: [r.test] for name, r in refs.items()}
        rows = reference_rows(refs)
        found = [
            {name: search_row(s.settings, s.workspace, s.inputs, name) for name in specs}
            for s in searches
        ]
        chosen = [
            choose(s.settings, s.workspace, s.inputs, rows_found)
            for s, rows_found in zip(searches, found, strict=True)
        ]
        # the mean validation score over the searches chooses the best strategy (and the
        # ablation's mined strategy); each search keeps its own setting and epoch count
        scores = {
            name: sum(c.choices[name].score for c in chosen) / len(searches) for name in specs
        }
        plans = [
            refit_plan(s.settings, s.inputs, c.choices, scores)
            for s, c in zip(searches, chosen, strict=True)
        ]
        if settings.parallel:  # every refit (search × row × seed), concurrently
            tasks = [
                ("refit", planned.name, seed, s.inputs.seed, as_task(planned))
                for s, plan in zip(searches, plans, strict=True)
                for planned in plan
                for seed in settings.seeds
            ]
            self.run_steps(tasks)

        def refit_all(index: int) -> RowRefits:
            """Row ``index`` of the plan, refitted in every search."""
            per_search = [
                refit_row(s.settings, s.workspace, s.inputs, plan[index]).runs
                for s, plan in zip(searches, plans, strict=True)
            ]
            return RowRefits(plans[0][index].name, plans[0][index].kind, per_search)

        first = chosen[0].choices
        for index in range(len(specs)):
            refits = refit_all(index)
            runs[refits.name] = refits.runs
            pick = chosen_settings(first[refits.name])
            rows.append(summarise(refits.name, refits.kind, refits.runs, scores[refits.name], pick))
            add_search_spread(rows[-1], refits.per_search)
        best = max(settings.strategies, key=lambda s: scores[s])
        pairs = [(m, "random") for m in settings.mined if "random" in settings.strategies]
        for objective in settings.objectives:  # does mining help ALE, …?
            if objective != "metric" and "random" in settings.strategies:
                pairs += [(f"{objective}-{m}", f"{objective}-random") for m in settings.mined]
        for index in range(len(specs), len(plans[0])):  # the ablation
            refits = refit_all(index)
            runs[refits.name] = refits.runs
            pick = chosen_settings(plans[0][index].choice)
            rows.append(summarise(refits.name, "ablation", refits.runs, float("nan"), pick))
            add_search_spread(rows[-1], refits.per_search)
            pairs.append((refits.name.split("@", 1)[1], refits.name))
        self.progress.stage("bootstrap intervals and paired comparisons")
        verdicts = intervals_and_comparisons(
            settings, self.workspace, self.inputs, rows, best, pairs
        )
        return ProtocolResult(
            rows=verdicts.rows,
            refs=refs,
            searches=[
                SearchOutcome(s.inputs.seed, f, c)
                for s, f, c in zip(searches, found, chosen, strict=True)
            ],
            scores=scores,
            best=best,
            pairs=pairs,
            runs=runs,
            comparisons=verdicts.comparisons,
        )

    def report(self, result: ProtocolResult) -> None:
        from src.protocol.report.write import write_report

        self.progress.stage("report: protocol.csv, protocol.md, protocol.png")
        path = write_report(self.settings, self.workspace, self.inputs, result)
        self.progress(f"done: {path}\n{path.read_text()}")


#: the Protocol of a worker process, by its config (its data modules serve its next steps)
_WORKER: dict[str, Protocol] = {}


def run_step(config: dict, task: tuple, threads: int, log_file: str | None = None) -> str:
    """Run one step of the protocol with config ``config`` in this process (a local worker or a
    SLURM job), saving what the serial step saves; its label.

    ``task``: ``("reference", name)``, ``("search", name[, search seed])`` or ``("refit", name,
    seed, search seed, planned)`` (``planned``: :func:`~src.protocol.refit.as_task`; the search
    seed: which of ``protocol.searches``; default the protocol's).
    """
    log_to(log_file)  # a SLURM job's or submitit's process: nothing was set up
    key = OmegaConf.to_yaml(OmegaConf.create(config))
    if key not in _WORKER:
        cfg = OmegaConf.create(config)
        cfg.protocol.threads = threads
        _WORKER.clear()
        _WORKER[key] = Protocol(cfg, quiet=True)
    main = _WORKER[key]
    kind, name = task[0], task[1]
    label = f"{kind} {name}" + (f" seed {task[2]}" if kind == "refit" else "")
    search_seed = {"search": 2, "refit": 3}.get(kind)  # the task's search (protocol.searches)
    search = main.searches[main.inputs.seed]
    if search_seed is not None and len(task) > search_seed:
        search = main.search(int(task[search_seed]))
    main.progress.where = search.workspace.progress.where = label
    if kind == "reference":
        from src.protocol.references import evaluate_references

        evaluate_references(main.settings, main.workspace, main.inputs, only=[name])
    elif kind == "search":
        from src.protocol.search import search_row

        search_row(search.settings, search.workspace, search.inputs, name)
    elif kind == "refit":
        from src.protocol.refit import from_task, refit_row

        planned = from_task(*task[4])
        refit_row(search.settings, search.workspace, search.inputs, planned, seeds=[task[2]])
    else:
        raise ValueError(f"unknown protocol task {task!r}")
    return label
