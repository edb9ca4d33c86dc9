"""A protocol's run folder: where each step keeps what it computed, so that a stopped protocol
continues with the steps it lacks. Every file goes through the one atomic writer
(:mod:`src.core.atomic`): a kill leaves each file whole or absent, never a part."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.core.atomic import write_text

log = logging.getLogger("src.protocol")


@dataclass
class Progress:
    """The protocol's progress lines: ``[stage k/n · t s] …`` in the main process, ``[<task> ·
    t s] …`` in a worker's (``where``). Another search's lines start with its ``label`` and
    count the same stages (:meth:`child`)."""

    stages: int  # how many stages the protocol has
    started: float = field(default_factory=time.perf_counter)
    label: str = ""  # "search seed k: " in another search's lines
    where: str | None = None  # a worker's task, named in its progress lines
    count: list[int] = field(default_factory=lambda: [0])  # the stage reached, shared

    def __call__(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        message = self.label + message
        if self.where:  # a worker's task
            log.info("[%s · %.0f s] %s", self.where, elapsed, message)
        else:
            log.info("[stage %d/%d · %.0f s] %s", self.count[0], self.stages, elapsed, message)

    def stage(self, title: str) -> None:
        """Say that the next stage starts."""
        self.count[0] += 1
        self(title)

    def child(self, label: str) -> Progress:
        """Another search's lines: the same clock and stage count, its own label."""
        return Progress(self.stages, self.started, label, self.where, self.count)


@dataclass
class Workspace:
    """The folder of one search (the run folder, or ``searches/seed<k>/`` of a replicate)."""

    folder: Path
    progress: Progress  # where each stage says what it does

    # ------------------------------------------------------------------- where steps live
    def reference(self, name: str) -> Path:
        """An untrained reference's result (its kept predictions: the same stem, ``.npz``)."""
        return self.folder / "references" / f"{name}.json"

    def refit(self, name: str, seed: int) -> Path:
        """A refit's result (its checkpoint and kept predictions: the same stem)."""
        return self.folder / "refit" / name / f"seed{seed}.json"

    def extension(self, strategy: str, cap: int) -> Path:
        """A chosen setting's validation runs extended to ``cap`` epochs."""
        return self.folder / "search" / "extended" / f"{strategy}_{cap}.json"

    # ------------------------------------------------------------------------- writing
    def saved(self, path: Path, compute: Callable[[], Any]) -> Any:
        """The JSON at ``path``, computed and written first if absent (a step done once)."""
        if path.is_file():
            self.progress(f"already done: {path.relative_to(self.folder)}")
            return json.loads(path.read_text())
        value = compute()
        write_text(path, json.dumps(value, indent=2) + "\n")
        return value

    def write_text(self, name: str, text: str) -> Path:
        """``<folder>/<name>``, written whole or not at all."""
        return write_text(self.folder / name, text)
