"""The protocol's run: its stages in order, each skipped when its results are already saved
(:class:`Protocol`; the job of ``python -m src.protocol`` is :func:`src.protocol.run`)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.core.env import config_dir
from src.protocol.executor import Executor, log_to
from src.protocol.references import TRAINED_REFERENCES, searched_rows
from src.protocol.settings import ProtocolSettings, protocol_settings
from src.protocol.workspace import Workspace

log = logging.getLogger("src.protocol")
CONF = config_dir()  # the checkout's conf/, or the copy installed with the package


class Protocol:
    """The stages of one protocol run, each skipped when its results are already saved."""

    def __init__(self, cfg: DictConfig, quiet: bool = False, data=None) -> None:
        """``quiet``: a worker's Protocol (:mod:`src.protocol.executor`), which says nothing the
        main process says too (the folds' note); ``data``: data modules to share (a search
        replicate's, :meth:`replica`)."""
        from src.protocol.training import DataModules, quiet_lightning

        quiet_lightning()
        self.cfg = cfg
        self.settings = settings = ProtocolSettings.from_config(cfg.protocol)
        if settings.threads:
            import torch

            torch.set_num_threads(settings.threads)
        self.folder = Path(cfg.paths.output_dir)
        self.workspace = Workspace(self.folder, self.progress)  # the steps this search saved
        self.where: str | None = None  # a worker's task, named in its progress lines
        self.executor: Executor | None = None  # runs the independent steps (main process)
        self.data = data if data is not None else DataModules(cfg.data)
        self.parent: Protocol | None = None
        self.folds = list(settings.folds) if self.data.has_folds else [1]
        if not self.data.has_folds and list(settings.folds) != [1] and not quiet:
            log.warning(
                "data=%s has one validation split: protocol.folds=%s runs as [1] "
                "(set protocol.folds=[1] to silence this)",
                _data_name(cfg.data),
                list(settings.folds),
            )
        test_dm = self.data.get("test", self.folds[0], int(cfg.seed), {})
        self.source, self.test_dm = test_dm.arrays.source, test_dm
        self.preprocessing = (test_dm.standardise, test_dm.l2_features, test_dm.l2_signatures)
        ablation = int(settings.ablation and bool(settings.mined))
        self.specs = searched_rows(settings, cfg.model)
        self.stage = 0
        self.stages = 3 + settings.searches * (2 * len(self.specs) + ablation)
        self.started = time.perf_counter()
        self.trials: dict[str, list[dict]] = {}  # finished trials' records, per strategy
        self.replicas: dict[int, Protocol] = {}  # the other searches (protocol.searches > 1)
        self.pruned: dict[str, int] = {}  # trials stopped by protocol.pruner, per study
        self.label = ""  # "search seed k: " in a replica's progress lines
        # each stage's results (ProtocolRun), empty until the stage runs
        self.refs: dict[str, dict] = {}
        self.window = 1
        self.chosen: dict[str, dict] = {}
        self.search_scores: dict[str, float] = {}
        self.best = ""
        self.pairs: list[tuple[str, str]] = []
        self.runs: dict[str, list[dict]] = {}
        self.comparisons: list[dict] = []

    # ------------------------------------------------------------------- search replicates
    def search_seeds(self) -> list[int]:
        """The seed of each search (``protocol.searches``): ``seed``, ``seed + 1``, …"""
        return [int(self.cfg.seed) + k for k in range(self.settings.searches)]

    def replica(self, seed: int) -> Protocol:
        """The search with seed ``seed``: this protocol for its own seed, else a protocol on
        the same config with that seed, in ``searches/seed<seed>/`` (its studies, extensions,
        refits and kept predictions), sharing this one's data and workers."""
        if seed == int(self.cfg.seed):
            return self
        if seed not in self.replicas:
            config = OmegaConf.to_container(self.cfg, resolve=True)
            config["seed"] = seed
            config["paths"]["output_dir"] = str(self.folder / "searches" / f"seed{seed}")
            config["protocol"]["searches"] = 1
            replica = Protocol(OmegaConf.create(config), quiet=True, data=self.data)
            replica.label, replica.where, replica.started = (
                f"search seed {seed}: ",
                self.where,
                self.started,
            )
            replica.parent = self
            self.replicas[seed] = replica
        return self.replicas[seed]

    # ----------------------------------------------------------------------------- helpers
    def progress(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        message = self.label + message
        if self.where:  # a worker's task
            log.info("[%s · %.0f s] %s", self.where, elapsed, message)
        else:
            stage, stages = (self.parent or self).stage, (self.parent or self).stages
            log.info("[stage %d/%d · %.0f s] %s", stage, stages, elapsed, message)

    def next_stage(self, title: str) -> None:
        (self.parent or self).stage += 1
        self.progress(title)

    def miner_cfg(self, name: str) -> DictConfig:
        return OmegaConf.load(CONF / "miner" / f"{name}.yaml")

    def context(self, name: str | None = None):
        """The search context of row ``name`` (its model config; default: the metric's)."""
        from src.protocol.search import SearchContext

        dm = self.data.get("val", self.folds[0], int(self.cfg.seed), {})
        train_classes = min(
            len(self.data.get("val", f, int(self.cfg.seed), {}).seen_classes) for f in self.folds
        )
        return SearchContext(
            data=self.data,
            model_cfg=self.specs[name][1] if name else self.cfg.model,
            trainer_cfg=self.cfg.trainer,
            folds=self.folds,
            max_epochs=self.settings.max_epochs,
            metric=self.settings.selection_metric,
            seed=int(self.cfg.seed),
            feature_dim=dm.feature_dim,
            signature_dim=dm.signature_dim,
            min_train_classes=train_classes,
            attribute_signatures=dm.signature_kind != "text",
            smoothing=3 if self.settings.smoothing == "auto" else int(self.settings.smoothing),
            pruner=self.settings.pruner,
            settings=protocol_settings(self.cfg),
            pool_cfg=self.cfg.get("pool"),
        )

    # ------------------------------------------------------------------------------ stages
    def references(self) -> dict[str, dict]:
        from src.protocol.references import evaluate_references

        return evaluate_references(self)

    def search(self, name: str) -> list[dict]:
        """Run (or continue) the row's study; the finished trials' records, in order."""
        from src.protocol.search import default_params, finished_records, run_study
        from src.protocol.storage import storage_for

        self.next_stage(f"search `{name}` on validation folds {self.folds}")
        ctx, miner = self.context(name), self.miner_cfg(self.specs[name][0])
        (self.folder / "search").mkdir(parents=True, exist_ok=True)
        storage, study_name = storage_for(self.settings.storage, self.folder, name)
        study = run_study(
            study_name,
            storage,
            ctx,
            miner,
            self.settings.n_trials,
            default_params(ctx, miner, self.preprocessing),
            self.progress,
        )
        self.pruned[name] = sum(
            "pruned" in t.user_attrs for t in study.get_trials(deepcopy=False)
            if t.state.name == "PRUNED"
        )  # fmt: skip
        finished = finished_records(study)
        if not finished:
            raise RuntimeError(f"search `{name}`: no trial finished; see protocol.log.")
        return finished

    def choose(self) -> dict[str, dict]:
        """Each strategy's setting, with the selection window fixed or chosen on held-out folds;
        validation runs extended where the epoch cap chose the epoch
        (:mod:`src.protocol.extend`)."""
        from src.protocol.extend import extend_chosen
        from src.protocol.search import choose_trial, selection_window

        pooled = [t for s in self.settings.strategies for t in self.trials[s]]  # the method's
        self.window = selection_window(pooled, self.settings.smoothing)
        chosen = {}
        for strategy, trials in self.trials.items():
            chosen[strategy] = choose_trial(trials, self.window)
            chosen[strategy]["defaults_curve"] = trials[0]["curve"]
            self.progress(
                f"`{strategy}`: chose trial {chosen[strategy]['trial'] + 1} "
                f"({self.settings.selection_metric} {chosen[strategy]['score']:.4f} with a "
                f"{self.window}-epoch window, {chosen[strategy]['best_epoch']} epochs)"
            )
        return extend_chosen(self, chosen)

    def refit(
        self, name: str, strategy: str, chosen: dict, model: DictConfig, seeds=None
    ) -> list[dict]:
        """The refits of row ``name`` on trainval, one per seed (``seeds``: a worker's share of
        ``protocol.seeds``), each tested once."""
        from src.protocol.search import apply
        from src.protocol.training import final_metrics

        seeds = list(self.settings.seeds) if seeds is None else seeds
        self.next_stage(f"refit `{name}` on trainval for seeds {seeds}, then test")
        values = dict(chosen["values"])
        miner = self.miner_cfg(strategy)
        if "temperature" not in miner:
            values.pop("miner.temperature", None)
        data, model_cfg, miner = apply(values, model, miner)
        runs = []
        for seed in seeds:

            def run(seed=int(seed)) -> dict:
                dm = self.data.get("test", self.folds[0], seed, data)
                return final_metrics(
                    dm,
                    model_cfg,
                    miner,
                    self.cfg.trainer,
                    int(chosen["best_epoch"]),
                    seed,
                    chosen["gamma"],
                    keep=self.workspace.refit(name, seed).with_suffix(""),
                    pool_cfg=self.cfg.get("pool"),
                )

            runs.append(self.workspace.saved(self.workspace.refit(name, seed), run))
            self.progress(f"`{name}` seed {seed}: test ZSL {runs[-1]['test/zsl_acc']:.4f}")
        return runs

    def refits(
        self, chosen: dict[str, dict], scores: dict[str, float] | None = None
    ) -> list[tuple[str, str, dict, DictConfig, str]]:
        """(row, strategy, its choice, model config, kind) of every refit, in the table's order:
        the searched rows, then the ablation (``random`` at the best mined strategy's setting;
        best by ``scores``, the mean validation score over the searches, default this
        search's)."""
        plan = [
            (name, strategy, chosen[name], model,
             "reference" if name in TRAINED_REFERENCES else "tuned")
            for name, (strategy, model) in self.specs.items()
        ]  # fmt: skip
        mined = self.settings.mined
        scores = scores or {s: chosen[s]["score"] for s in self.settings.strategies}
        if self.settings.ablation and mined:
            best_mined = max(mined, key=lambda s: scores[s])
            plan.append(
                (f"random@{best_mined}", "random", chosen[best_mined], self.cfg.model, "ablation")
            )
        return plan

    def run(self) -> list[dict]:
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

    def _run(self) -> list[dict]:
        from src.protocol.references import UNTRAINED, reference_rows
        from src.protocol.report.results import add_search_spread, chosen_settings, summarise

        searches = [self.replica(seed) for seed in self.search_seeds()]  # this one first
        if self.settings.parallel:  # every study and untrained reference, concurrently
            untrained = [("reference", n) for n in self.settings.references if n in UNTRAINED]
            studies = [
                ("search", name, int(search.cfg.seed)) for search in searches for name in self.specs
            ]
            self.run_steps(studies + untrained)
        refs = self.refs = self.references()
        self.runs = {name: [r["test"]] for name, r in refs.items()}
        rows = reference_rows(refs)
        for search in searches:
            search.refs = refs
            search.trials = {name: search.search(name) for name in self.specs}
        for search in searches:
            search.chosen = search.choose()
        chosen = self.chosen
        # the mean validation score over the searches chooses the best strategy (and the
        # ablation's mined strategy); each search keeps its own setting and epoch count
        scores = {
            name: sum(s.chosen[name]["score"] for s in searches) / len(searches)
            for name in self.specs
        }
        self.search_scores = scores
        plans = [search.refits(search.chosen, scores) for search in searches]
        if self.settings.parallel:  # every refit (search × row × seed), concurrently
            tasks = [
                ("refit", name, strategy, pick, OmegaConf.to_container(model, resolve=True), seed,
                 int(search.cfg.seed))
                for search, plan in zip(searches, plans, strict=True)
                for name, strategy, pick, model, _ in plan
                for seed in self.settings.seeds
            ]  # fmt: skip
            self.run_steps(tasks)

        def refit_all(index: int) -> tuple[str, str, list[list[dict]]]:
            """Row ``index`` of the plan, refitted in every search: (name, kind, runs per
            search)."""
            per_search = []
            for search, plan in zip(searches, plans, strict=True):
                name, strategy, pick, model, _ = plan[index]
                per_search.append(search.refit(name, strategy, pick, model))
            return plan[index][0], plan[index][4], per_search

        for index in range(len(self.specs)):
            name, kind, per_search = refit_all(index)
            runs = self.runs[name] = [run for runs in per_search for run in runs]
            rows.append(summarise(name, kind, runs, scores[name], chosen_settings(chosen[name])))
            add_search_spread(rows[-1], per_search)
        self.best = max(self.settings.strategies, key=lambda s: scores[s])
        mined = self.settings.mined
        self.pairs = [(m, "random") for m in mined if "random" in self.settings.strategies]
        for objective in self.settings.objectives:  # does mining help ALE, …?
            if objective != "metric" and "random" in self.settings.strategies:
                self.pairs += [(f"{objective}-{m}", f"{objective}-random") for m in mined]
        for index in range(len(self.specs), len(plans[0])):  # the ablation
            name, _, per_search = refit_all(index)
            runs = self.runs[name] = [run for runs in per_search for run in runs]
            pick = plans[0][index][2]
            rows.append(summarise(name, "ablation", runs, float("nan"), chosen_settings(pick)))
            add_search_spread(rows[-1], per_search)
            self.pairs.append((name.split("@", 1)[1], name))
        from src.protocol.verdicts import intervals_and_comparisons

        self.next_stage("bootstrap intervals and paired comparisons")
        self.comparisons = intervals_and_comparisons(self, rows)
        return rows

    def report(self, rows: list[dict]) -> None:
        from src.protocol.report.write import write_report

        self.next_stage("report: protocol.csv, protocol.md, protocol.png")
        path = write_report(self, rows)
        self.progress(f"done: {path}\n{path.read_text()}")


def _data_name(data_cfg: DictConfig) -> str:
    """The dataset's name in a message: the ``data=`` choice, else its datamodule's class."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        return str(HydraConfig.get().runtime.choices.get("data"))
    return str(data_cfg.get("_target_", "?")).rsplit(".", 1)[-1]


#: the Protocol of a worker process, by its config (its data modules serve its next steps)
_WORKER: dict[str, Protocol] = {}


def run_step(config: dict, task: tuple, threads: int, log_file: str | None = None) -> str:
    """Run one step of the protocol with config ``config`` in this process (a local worker or a
    SLURM job), saving what the serial step saves; its label.

    ``task``: ``("reference", name)``, ``("search", name[, search seed])`` or ``("refit", name,
    strategy, chosen, model, seed[, search seed])`` (the search seed: which of
    ``protocol.searches``; default the protocol's).
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
    label = f"{kind} {name}" + (f" seed {task[5]}" if kind == "refit" else "")
    search_seed = {"search": 2, "refit": 6}.get(kind)  # the task's search (protocol.searches)
    protocol = main
    if search_seed is not None and len(task) > search_seed:
        protocol = main.replica(int(task[search_seed]))
    main.where = protocol.where = label
    if kind == "reference":
        from src.protocol.references import evaluate_references

        evaluate_references(protocol, only=[name])
    elif kind == "search":
        protocol.search(name)
    elif kind == "refit":
        _, name, strategy, chosen, model, seed = task[:6]
        protocol.refit(name, strategy, chosen, OmegaConf.create(model), seeds=[seed])
    else:
        raise ValueError(f"unknown protocol task {task!r}")
    return label
