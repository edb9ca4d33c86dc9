"""One line per finished job of a sweep, a summary table at its end (a Hydra callback).

``[sweep] job 3/4 · 0:41 elapsed · ETA 0:14 · #2 seed=2 → test ZSL 0.913 H 0.627``

The main process watches the sweep folder (a job has finished when its folder holds
``metrics.json``, failed when it holds ``failure.txt``), so the line comes for every launcher:
jobs run in this process (basic launcher; reported as each ends), in worker processes
(joblib) or in their own (submitit, whose jobs print nothing here); while nothing finishes, a
line every ``heartbeat_s`` says how many jobs run. At the end: a table of every job of this
sweep, and, when jobs failed, the sweep stops with exit status 1 and one line naming them
(their tracebacks are in their ``failure.txt``).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from src.sweeps.warmup import warmup_notes, warmup_status


def say(line: str) -> None:
    """A sweep line on stdout: not through logging, whose handlers belong to the running job
    (its console format and its log file)."""
    print(line, flush=True)


class SweepFailed(SystemExit):
    """Ends a sweep whose jobs failed: Hydra turns a callback's ``Exception`` into a warning,
    so this is a ``SystemExit`` (its message is printed, the exit status is 1)."""


def clock(seconds: float) -> str:
    hours, rest = divmod(round(seconds), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def total_jobs(config: DictConfig) -> tuple[int | None, bool]:
    """How many jobs the sweep runs, and whether that count includes the jobs a resumed sweep
    finds finished: the basic sweeper's whole grid (yes), Optuna's ``n_trials`` of this
    invocation (no: a resumed search adds as many again)."""
    from src.sweeps.check import grid_points

    grid = grid_points(config)
    if grid is not None:
        return len(grid), True
    n_trials = config.hydra.sweeper.get("n_trials")
    return (int(n_trials) if isinstance(n_trials, int) else None), False


def short(value: str) -> str:
    """``0.0012520653814999472`` → ``0.001252`` (Optuna's values); other text unchanged."""
    try:
        number = float(value)
    except ValueError:
        return value
    return value if number.is_integer() or "." not in value else f"{number:.4g}"


class JobFolder:
    """What one job folder of the sweep says about its job."""

    def __init__(self, path: Path, fixed: set[str]) -> None:
        self.path, self.num = path, path.name
        overrides = path / ".hydra" / "overrides.yaml"
        items = OmegaConf.to_container(OmegaConf.load(overrides)) if overrides.is_file() else []
        self.setting = " ".join(
            f"{o.partition('=')[0]}={short(o.partition('=')[2])}"
            for o in map(str, items)
            if o not in fixed and not o.startswith(("paths.", "hydra."))
        )
        self.metrics: dict[str, float] = {}
        self.error = ""
        finished, failure = path / "metrics.json", path / "failure.txt"
        if finished.is_file():
            self.status = "finished"
            try:
                self.metrics = json.loads(finished.read_text())
            except ValueError:
                self.status = "unreadable"
        elif failure.is_file():
            self.status = "failed"
            lines = failure.read_text().strip().splitlines()
            self.error = lines[-1].removeprefix("Error: ") if lines else "unknown error"
        else:
            self.status = "running" if (path / ".running.json").is_file() else "not finished"

    def value(self, name: str) -> float | None:
        for stage in ("test", "val"):
            value = self.metrics.get(f"{stage}/{name}")
            if isinstance(value, int | float):
                return float(value)
        return None

    def result(self) -> str:
        if self.status == "failed":
            return f"failed: {self.error}"
        stage = "test" if "test/zsl_acc" in self.metrics else "val"
        parts = [
            f"{short} {self.value(name):.3f}"
            for name, short in (("zsl_acc", "ZSL"), ("gzsl_H", "H"))
            if self.value(name) is not None
        ]
        warmup = warmup_status(self.metrics)
        result = f"{stage} {' '.join(parts)}" if parts else self.status
        return f"{result} ({warmup})" if warmup else result


class SweepProgress(Callback):
    """Reports a sweep's progress and summary (see the module's docstring)."""

    def __init__(self, poll_s: float = 1.0, heartbeat_s: float = 30.0) -> None:
        self.poll_s, self.heartbeat_s = poll_s, heartbeat_s
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def __getstate__(self) -> dict:  # sent to joblib/submitit workers: no thread, no lock
        return {"poll_s": self.poll_s, "heartbeat_s": self.heartbeat_s}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)

    # ----------------------------------------------------------------------- Hydra's hooks
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._pid, self._started = os.getpid(), time.time()
        self._dir = Path(str(config.hydra.sweep.dir))
        self._total, self._total_counts_before = total_jobs(config)
        overrides = OmegaConf.to_container(config.hydra.overrides.task, resolve=False)
        self._fixed = {o for o in map(str, overrides) if "," not in o and "(" not in o}
        self._reported: set[str] = set()
        self._before = {p.name for p in self._folders() if (p / "metrics.json").is_file()}
        self._last_line = time.time()
        if "optuna" in str(config.hydra.sweeper.get("_target_", "")).lower():
            _optuna_through_logging()
        jobs = f"{self._total} jobs" if self._total else "jobs"
        say(f"[sweep] {jobs} → {self._dir}")
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="sweep-progress", daemon=True)
        self._thread.start()

    def on_job_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._pid == os.getpid():  # the job ran in this process: report it at once
            self._report()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._report()
        jobs = [JobFolder(p, self._fixed) for p in self._folders()]
        jobs = [j for j in jobs if j.num not in self._before or j.status != "finished"]
        before = sum(p.name in self._before for p in self._folders())
        print_summary(jobs, self._dir, time.time() - self._started, before)
        failed = [j for j in jobs if j.status == "failed"]
        if failed:
            named = "; ".join(
                f"job {j.num} ({j.setting or 'no override'}): {j.error}" for j in failed
            )
            raise SweepFailed(
                f"Error: {len(failed)} of {len(jobs)} jobs failed — {named} (tracebacks: "
                "failure.txt in each job's folder)"
            )

    # ------------------------------------------------------------------------------ helpers
    def _folders(self) -> list[Path]:
        if not self._dir.is_dir():
            return []
        folders = [p for p in self._dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return sorted(folders, key=lambda p: (len(p.name), p.name))

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._report()

    def _report(self) -> None:
        with self._lock:
            for path in self._folders():
                if path.name in self._reported or path.name in self._before:
                    continue
                if (path / "metrics.json").is_file() or (path / "failure.txt").is_file():
                    self._reported.add(path.name)
                    self._line(JobFolder(path, self._fixed))
            if time.time() - self._last_line >= self.heartbeat_s:
                running = sum((p / ".running.json").is_file() for p in self._folders())
                done = self._done()
                total = f"/{self._total}" if self._total else ""
                elapsed = clock(time.time() - self._started)
                say(f"[sweep] {done}{total} done · {elapsed} elapsed · {running} running")
                self._last_line = time.time()

    def _done(self) -> int:
        """Jobs done, in the count of ``self._total``."""
        return len(self._reported) + (len(self._before) if self._total_counts_before else 0)

    def _line(self, job: JobFolder) -> None:
        done = self._done()
        elapsed = time.time() - self._started
        position = f"job {done}/{self._total}" if self._total else f"job {done}"
        parts = [position, f"{clock(elapsed)} elapsed"]
        if self._total and len(self._reported):
            left = max(self._total - done, 0)
            parts.append(f"ETA {clock(elapsed / len(self._reported) * left)}")
        setting = f"#{job.num} {job.setting}".strip()
        say(f"[sweep] {' · '.join(parts)} · {setting} → {job.result()}")
        self._last_line = time.time()


def print_summary(jobs: list[JobFolder], folder: Path, seconds: float, before: int = 0) -> None:
    """The sweep's jobs in a table (≤ 80 columns), the jobs that never left the pool's random
    warm-up, and how to get the full report. ``before``: jobs of a resumed sweep that had
    finished earlier (skipped); when no job was left to run, one line says so instead."""
    from rich.console import Console
    from rich.table import Table

    report = f"Report: python -m src.report {folder}"
    if not jobs:
        say(f"Sweep: no job ran: all {before} had finished in an earlier run. {report}")
        return
    earlier = f" (+{before} finished in an earlier run)" if before else ""
    title = f"Sweep: {len(jobs)} jobs in {clock(seconds)}{earlier}"
    table = Table(title=title, title_justify="left")
    for name, justify in (("job", "right"), ("setting", "left"), ("status", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for name in ("zsl_acc", "gzsl_H", "gzsl_H_cal"):
        table.add_column(name, justify="right")
    for job in jobs:
        values = [job.value(n) for n in ("zsl_acc", "gzsl_H", "gzsl_H_cal")]
        warmup = warmup_status(job.metrics)
        table.add_row(
            job.num,
            job.setting.replace(" ", "\n") or "–",
            f"{job.status}\n({warmup})" if warmup else job.status,
            *("–" if v is None or math.isnan(v) else f"{v:.3f}" for v in values),
        )
    console = Console(width=min(Console().width, 100))
    console.print(table)
    labels = {f"job {j.num} ({j.setting or 'no override'})": j.metrics for j in jobs}
    for note in warmup_notes(labels):
        console.print(note, soft_wrap=True, markup=False)
    console.print(report, soft_wrap=True, markup=False)


def _optuna_through_logging() -> None:
    """Optuna's messages through Hydra's logging, not its own coloured handler."""
    import optuna

    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
