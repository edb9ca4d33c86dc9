"""A protocol's settings: every ``protocol.*`` value checked before any data is read
(:func:`check_protocol_settings`; each refusal is one line naming the key), then read once into
one typed object (:class:`ProtocolSettings`, where each default is written once). What a folder
saves of them, and compares on every rerun, is :mod:`src.protocol.identity`'s."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from src.core.metric_catalogue import validation_metrics


@dataclass(frozen=True)
class BootstrapSettings:
    """``protocol.bootstrap``: resamples of the intervals, the seed of the plan, the level."""

    resamples: int = 2000
    seed: int = 0
    level: float = 0.95


@dataclass(frozen=True)
class ProtocolSettings:
    """Every ``protocol.*`` value, typed, read once from the config (checked first by
    :func:`check_protocol_settings`). A default here is what a folder saved by an earlier
    version, which lacks the key, ran with; the defaults of a new run are ``conf/protocol.yaml``'s.
    """

    strategies: tuple[str, ...]
    references: tuple[str, ...] = ()
    objectives: tuple[str, ...] = ("metric",)
    n_trials: int = 24
    folds: tuple[int, ...] = (1, 2, 3)
    seeds: tuple[int, ...] = (1, 2, 3)
    searches: int = 1
    pruner: str = "none"
    max_epochs: int = 15
    max_epochs_limit: int | None = None  # None: max_epochs (never extended)
    smoothing: int | str = 1  # an odd window, or "auto"
    selection_metric: str = "val/zsl_acc"
    threads: int | None = None
    workers: int = 1
    launcher: str = "local"
    storage: str | None = None
    ablation: bool = True
    bootstrap: BootstrapSettings = BootstrapSettings()

    @classmethod
    def from_config(cls, p: DictConfig | dict) -> ProtocolSettings:
        """The settings of a ``protocol`` node (a saved ``protocol_config.yaml``'s, too)."""
        values = OmegaConf.to_container(p, resolve=True) if isinstance(p, DictConfig) else dict(p)
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in values.items() if k in known}
        for key in ("strategies", "references", "objectives"):
            if key in given:
                given[key] = tuple(str(v) for v in given[key])
        for key in ("folds", "seeds"):
            if key in given:
                given[key] = tuple(int(v) for v in given[key])
        b = values.get("bootstrap") or {}
        defaults = BootstrapSettings()
        given["bootstrap"] = BootstrapSettings(
            int(b.get("resamples", defaults.resamples)),
            int(b.get("seed", defaults.seed)),
            float(b.get("level", defaults.level)),
        )
        return cls(**given)

    @property
    def epoch_limit(self) -> int:
        """The longest a chosen setting's validation runs may be extended to."""
        return self.max_epochs if self.max_epochs_limit is None else self.max_epochs_limit

    @property
    def parallel(self) -> bool:
        """Whether the protocol's tasks leave the main process."""
        return self.workers > 1 or self.launcher != "local"

    @property
    def mined(self) -> list[str]:
        """The strategies that mine (every one but ``random`` and ``random_fixed``)."""
        return [s for s in self.strategies if s not in RANDOM_STRATEGIES]


#: the strategies that choose their negatives at random (the comparators of the mined ones)
RANDOM_STRATEGIES = ("random", "random_fixed")
#: ``protocol.launcher``'s choices (:class:`~src.protocol.executor.Executor`)
LAUNCHERS = ("local", "submitit_local", "slurm")
#: ``protocol.pruner``'s choices (:func:`~src.protocol.study.make_pruner`)
PRUNER_CHOICES = ("none", "median")


#: keys of ``protocol.bootstrap``
BOOTSTRAP_KEYS = ("resamples", "seed", "level")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_protocol_settings(p: DictConfig, conf_dir: Path) -> None:
    """Every ``protocol.*`` value, checked before any data is read: a
    :class:`~src.core.errors.ConfigError` whose one line names the key, the value and what is
    allowed (the entry point prints it alone)."""
    from src.core.checks import SEED_RANGE
    from src.core.errors import ConfigError

    values = OmegaConf.to_container(p, resolve=True)
    strategies = sorted(f.stem for f in (conf_dir / "miner").glob("*.yaml"))

    def fail(key: str, allowed: str) -> None:
        value = values
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        shown = repr(value) if isinstance(value, str) else value
        raise ConfigError(f"protocol.{key}={shown} is invalid: {allowed}.")

    def check_list(key: str, ok, allowed: str, empty: bool = False) -> None:
        """``protocol.<key>``: a list of values passing ``ok``, without repeats."""
        value = values.get(key)
        if not isinstance(value, list) or (not value and not empty):
            fail(key, f"use a {'' if empty else 'non-empty '}list of {allowed}")
        if not all(ok(v) for v in value):
            fail(key, f"use a {'' if empty else 'non-empty '}list of {allowed}")
        repeated = sorted({str(v) for v in value if value.count(v) > 1})
        if repeated:
            fail(key, f"{', '.join(repeated)} appears more than once; list each once")

    def check_int(key: str, low: int, allowed: str = "") -> None:
        value = values.get(key)
        if not _is_int(value) or value < low:
            fail(key, f"it must be an integer ≥ {allowed or low}")

    check_list("strategies", lambda s: s in strategies, f"{strategies}")
    from src.protocol.model_kinds import model_kinds

    kinds = model_kinds(conf_dir)
    references, objectives = list(kinds.references), list(kinds.objectives)
    check_list("references", lambda r: r in references, f"{references}", empty=True)
    if "objectives" in values:
        check_list("objectives", lambda o: o in objectives, f"{objectives}")
    check_int("n_trials", 1)
    check_int("max_epochs", 1)
    limit, cap = values.get("max_epochs_limit"), values["max_epochs"]
    if not _is_int(limit) or limit < cap:
        fail("max_epochs_limit", f"it must be an integer ≥ protocol.max_epochs ({cap})")
    check_list("folds", lambda f: _is_int(f) and f in (1, 2, 3), "1, 2, 3")
    low, high = SEED_RANGE
    check_list("seeds", lambda s: _is_int(s) and low <= s <= high, f"integers in [{low}, {high}]")
    if "searches" in values:
        check_int("searches", 1)
    if values.get("pruner", "none") not in PRUNER_CHOICES:
        fail("pruner", f"use {' or '.join(PRUNER_CHOICES)}")
    smoothing = values.get("smoothing", 1)
    if smoothing != "auto" and (not _is_int(smoothing) or smoothing < 1 or smoothing % 2 == 0):
        fail(
            "smoothing",
            "use auto or an odd number of epochs (1, 3, 5…): the window is centred on the "
            "epoch, (w - 1) / 2 epochs on each side",
        )
    metric = values.get("selection_metric")
    if not (isinstance(metric, str) and metric.startswith("val/")):
        fail("selection_metric", "choose on a val/ metric, never a test one")
    if metric not in validation_metrics():
        fail("selection_metric", f"a validation run logs {', '.join(validation_metrics())}")
    threads = values.get("threads")
    if threads is not None and not (_is_int(threads) and threads >= 1):
        fail("threads", "use null (torch's default) or an integer ≥ 1")
    if "workers" in values:
        check_int("workers", 1)
    if values.get("launcher", "local") not in LAUNCHERS:
        fail("launcher", "use local, slurm or submitit_local")
    storage = values.get("storage")
    if storage is not None:
        from src.protocol.storage import storage_problem

        problem = storage_problem(storage)
        if problem:
            fail("storage", problem)
    if not isinstance(values.get("ablation"), bool):
        fail("ablation", "use true or false")
    bootstrap = values.get("bootstrap")
    if not isinstance(bootstrap, dict) or set(bootstrap) != set(BOOTSTRAP_KEYS):
        raise ConfigError(
            f"protocol.bootstrap={bootstrap} is invalid: give {{resamples: …, seed: …, level: …}}."
        )
    if not _is_int(bootstrap["resamples"]) or bootstrap["resamples"] < 100:
        fail("bootstrap.resamples", "it must be an integer ≥ 100")
    if not _is_int(bootstrap["seed"]) or not low <= bootstrap["seed"] <= high:
        fail("bootstrap.seed", f"it must be an integer in [{low}, {high}]")
    level = bootstrap["level"]
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        fail("bootstrap.level", "it must be a number in (0, 1), e.g. 0.95")
