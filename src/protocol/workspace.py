"""A protocol's run folder: where each step keeps what it computed, so that a stopped protocol
continues with the steps it lacks. Every file goes through the one atomic writer
(:mod:`src.core.atomic`): a kill leaves each file whole or absent, never a part."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.core.atomic import write_text


@dataclass
class Workspace:
    """The folder of one search (the run folder, or ``searches/seed<k>/`` of a replicate)."""

    folder: Path
    progress: Callable[[str], None]  # where "already done" is said

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
