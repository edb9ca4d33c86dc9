"""The engine that runs a protocol's independent steps: in this process, on
``protocol.workers`` local processes (:mod:`concurrent.futures`), or as jobs of a SLURM cluster
through submitit (``protocol.launcher=slurm``, with ``conf/hydra/launcher/slurm.yaml``'s
settings; ``submitit_local`` runs the same path as local processes).

:class:`Executor` knows no protocol: it runs a step function (picklable, module-level) on a
list of tasks, each call ``step(config, task, threads, log_file)`` in the process or job that
takes it, and waits for all of them; the first failure is raised once every task has ended, so
that no finished work is lost. What a step is, and that it saves what it computes, is the
pipeline's (:func:`src.protocol.pipeline.run_step`).

Each local worker runs torch on ``protocol.threads`` threads (null: the cores divided among the
workers), so that N workers on N cores do not oversubscribe them, and dies with the protocol
(``PR_SET_PDEATHSIG``). A worker's log lines go to the protocol's log file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.core.env import config_dir
from src.protocol.settings import ProtocolSettings

log = logging.getLogger("src.protocol")
CONF = config_dir()  # the checkout's conf/, or the copy installed with the package


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
    log_to(log_file)


def log_to(log_file: str | None) -> None:
    """Send this process's log lines to the console and ``log_file`` (a SLURM job's or
    submitit's process, or a local worker: nothing set them up)."""
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


#: a step: ``step(config, task, threads, log_file) -> label``, run where the task runs
Step = Callable[[dict, tuple, int, "str | None"], str]


@dataclass
class Executor:
    """Runs steps on the configured launcher (``protocol.workers``, ``protocol.launcher``,
    ``protocol.threads``). The local worker processes start once, at the first wave, and serve
    every later one (each start imports torch); :meth:`close` stops them."""

    settings: ProtocolSettings
    cfg: DictConfig  # the protocol's config: what every step rebuilds its process from
    folder: Path  # the run folder (submitit's files: <folder>/.submitit/)
    progress: Callable[[str], None] = log.info
    pool: Any = None  # the local worker processes, once started

    def threads(self) -> int:
        """torch threads of each worker or job."""
        if self.settings.launcher != "local" and not self.settings.threads:
            return int(slurm_parameters(self.cfg).get("cpus_per_task", 1))
        return worker_threads(self.settings)

    def run(self, step: Step, tasks: list[tuple]) -> None:
        """Run ``step`` on every task, concurrently; raise the first failure after all end."""
        if not tasks:
            return
        workers, launcher = self.settings.workers, self.settings.launcher
        config = OmegaConf.to_container(self.cfg, resolve=True)
        threads = self.threads()
        names = ", ".join(" ".join(map(str, t[:2])) for t in tasks)
        self.progress(f"{len(tasks)} tasks on {workers} {launcher} workers: {names}")
        if launcher == "local":
            errors = self._run_local(step, config, tasks, threads)
        else:
            errors = self._run_submitit(step, config, tasks, threads)
        if errors:
            raise errors[0]

    def _run_local(self, step: Step, config: dict, tasks: list[tuple], threads: int) -> list:
        from concurrent.futures import wait

        if self.pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self.pool = ProcessPoolExecutor(
                max_workers=self.settings.workers,
                mp_context=multiprocessing.get_context("spawn"),  # no forked torch threads
                initializer=_init_worker,
                initargs=(_log_file(), threads),
            )
        futures = [self.pool.submit(step, config, task, threads, None) for task in tasks]
        try:
            wait(futures)
        except BaseException:
            self.close(cancel=True)
            raise
        return [f.exception() for f in futures if f.exception() is not None]

    def _run_submitit(self, step: Step, config: dict, tasks: list[tuple], threads: int) -> list:
        import submitit

        launcher = self.settings.launcher
        executor = submitit.AutoExecutor(
            folder=self.folder / ".submitit" / "%j",
            cluster="local" if launcher == "submitit_local" else "slurm",
        )
        executor.update_parameters(**slurm_parameters(self.cfg))
        if launcher == "slurm":
            executor.update_parameters(slurm_array_parallelism=self.settings.workers)
        with executor.batch():
            jobs = [executor.submit(step, config, t, threads, _log_file()) for t in tasks]
        errors = []
        for job in jobs:
            try:
                job.result()
            except Exception as error:  # raised by run(), after the other jobs
                errors.append(error)
        return errors

    def close(self, cancel: bool = False) -> None:
        """Stop the worker processes (``cancel``: drop the tasks not yet started)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            pool.shutdown(wait=not cancel, cancel_futures=cancel)
