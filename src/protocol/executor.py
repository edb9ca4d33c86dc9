"""The protocol's independent work on several processes: ``protocol.workers`` local processes
(:mod:`concurrent.futures`), or jobs of a SLURM cluster through submitit
(``protocol.launcher=slurm``, with the settings of ``conf/hydra/launcher/slurm.yaml``).

Two waves of tasks run concurrently, each task one step of the serial protocol:

- before the choice, every untrained reference and every searched row's whole study;
- after it (the choice and its extensions run in the main process), every refit (row × seed).

A task runs the serial step in a :class:`~src.protocol.Protocol` of its own process and saves
what that step saves (a reference's JSON, the study in its storage, a refit's JSON). The main
process then runs the serial protocol, which finds every step done and reads it back. So each
study stays sequential (TPE's draws do not depend on the number of workers), ``protocol.csv``
is the serial run's, and a stopped parallel protocol continues like a serial one, with any
number of workers: a killed worker's trial is closed and run again (:mod:`src.protocol.search`).

Each local worker runs torch on ``protocol.threads`` threads (null: the cores divided among the
workers), so that N workers on N cores do not oversubscribe them, and dies with the protocol.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.core.env import config_dir
from src.protocol.settings import ProtocolSettings

log = logging.getLogger("src.protocol")
CONF = config_dir()  # the checkout's conf/, or the copy installed with the package
LAUNCHERS = ("local", "submitit_local", "slurm")
#: the per-process Protocol of a worker (its data modules are reused by its next tasks)
_WORKER: dict[str, Any] = {}


def worker_threads(settings: ProtocolSettings) -> int:
    """torch threads of each worker: ``protocol.threads``, else the cores shared out."""
    if settings.threads:
        return settings.threads
    return max(1, (os.cpu_count() or 1) // settings.workers)


def _init_worker(log_file: str | None, threads: int) -> None:
    """A local worker: its threads, its log lines beside the protocol's, and death with it."""
    import torch

    torch.set_num_threads(threads)
    try:  # Linux: SIGKILL when the protocol dies, so no orphan writes to a study it left
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    _log_to(log_file)


def _log_to(log_file: str | None) -> None:
    root = logging.getLogger()
    if root.handlers:
        return
    fmt = logging.Formatter("[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_file:
        handlers.append(logging.FileHandler(log_file, mode="a"))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_task(
    protocol_class: type, config: dict, task: tuple, threads: int, log_file: str | None = None
) -> str:
    """Run one task in this process (a worker or a SLURM job); its label.

    ``protocol_class``: :class:`src.protocol.Protocol` (passed, not imported: no import cycle);
    ``config``: the protocol's resolved config; ``task``: ``("reference", name)``,
    ``("search", name[, search seed])`` or ``("refit", name, strategy, chosen, model, seed[,
    search seed])`` (the search seed: which of ``protocol.searches``; default the protocol's).
    """
    _log_to(log_file)  # a SLURM job's or submitit's process: nothing was set up
    key = OmegaConf.to_yaml(OmegaConf.create(config))
    if key not in _WORKER:
        cfg = OmegaConf.create(config)
        cfg.protocol.threads = threads
        _WORKER.clear()
        _WORKER[key] = protocol_class(cfg, quiet=True)
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


def _log_file() -> str | None:
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            return handler.baseFilename
    return None


def slurm_parameters(cfg: DictConfig) -> dict[str, Any]:
    """submitit's parameters from ``conf/hydra/launcher/slurm.yaml`` (partition, account, QOS,
    time, CPUs, memory, setup: ``ZSL_SLURM_*`` in ``.env``), one task and one process each,
    with one GPU when ``trainer.accelerator`` is a GPU one."""
    launcher = OmegaConf.load(CONF / "hydra" / "launcher" / "slurm.yaml")
    launcher.pop("defaults", None)
    trainer = {"devices": 1, "num_nodes": 1}  # its tasks and GPUs are set below, per step
    root = OmegaConf.create({"trainer": trainer, "launcher": launcher})
    s = OmegaConf.to_container(root, resolve=True)["launcher"]
    gpu = str(cfg.trainer.get("accelerator", "cpu")) in ("gpu", "cuda", "auto")
    params = {
        "timeout_min": s["timeout_min"],
        "cpus_per_task": s["cpus_per_task"],
        "mem_gb": s["mem_gb"],
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 1 if gpu else 0,
        "slurm_partition": s["partition"],
        "slurm_account": s["account"],
        "slurm_qos": s["qos"],
        "slurm_setup": s["setup"],
        "slurm_array_parallelism": s["array_parallelism"],
        "name": "zsl-protocol",
    }
    return {k: v for k, v in params.items() if v is not None}


def local_pool(protocol: Any, workers: int, threads: int):
    """The protocol's worker processes, started once for both waves (each start imports torch)."""
    if getattr(protocol, "pool", None) is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        protocol.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),  # no forked torch thread pools
            initializer=_init_worker,
            initargs=(_log_file(), threads),
        )
    return protocol.pool


def close_pool(protocol: Any, cancel: bool = False) -> None:
    """Stop the protocol's worker processes (``cancel``: drop the tasks not yet started)."""
    pool = getattr(protocol, "pool", None)
    if pool is not None:
        protocol.pool = None
        pool.shutdown(wait=not cancel, cancel_futures=cancel)


def run_tasks(protocol: Any, tasks: list[tuple]) -> None:
    """Run ``tasks`` on the configured workers; every task ends (finished or failed) before the
    first failure is raised, so that no finished work is lost."""
    if not tasks:
        return
    settings, cfg = protocol.settings, protocol.cfg
    workers, launcher = settings.workers, settings.launcher
    config = OmegaConf.to_container(cfg, resolve=True)
    threads = worker_threads(settings)
    if launcher != "local" and not settings.threads:
        threads = int(slurm_parameters(cfg).get("cpus_per_task", 1))
    names = ", ".join(" ".join(map(str, t[:2])) for t in tasks)
    protocol.progress(f"{len(tasks)} tasks on {workers} {launcher} workers: {names}")
    if launcher == "local":
        from concurrent.futures import wait

        pool = local_pool(protocol, workers, threads)
        futures = [pool.submit(run_task, type(protocol), config, t, threads) for t in tasks]
        try:
            wait(futures)
        except BaseException:
            close_pool(protocol, cancel=True)
            raise
        errors = [f.exception() for f in futures if f.exception() is not None]
    else:
        import submitit

        executor = submitit.AutoExecutor(
            folder=protocol.folder / ".submitit" / "%j",
            cluster="local" if launcher == "submitit_local" else "slurm",
        )
        executor.update_parameters(**slurm_parameters(cfg))
        if launcher == "slurm":
            executor.update_parameters(slurm_array_parallelism=workers)
        with executor.batch():
            jobs = [
                executor.submit(run_task, type(protocol), config, t, threads, _log_file())
                for t in tasks
            ]
        errors = []
        for job in jobs:
            try:
                job.result()
            except Exception as error:  # raised below, after the other jobs
                errors.append(error)
    if errors:
        raise errors[0]
