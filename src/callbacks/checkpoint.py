"""Checkpoints of a run: ModelCheckpoint that keeps selecting over a resumed run's whole history."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)


class RunCheckpoint(ModelCheckpoint):
    """:class:`~lightning.pytorch.callbacks.ModelCheckpoint` for a run's own folder.

    - No versioned names by default (``last-v1.ckpt``): a file of the same name in a job's
      folder is that job's own earlier save.
    - A run resumed from another folder's checkpoint (``ckpt_path=<other run>/…``) keeps its
      selection over the whole history: the best checkpoints of the earlier run are copied into
      this run's folder and their scores restored, so an epoch of the earlier run can still be
      the selected one (Lightning would forget their scores and select among the new epochs
      only). The earlier run's files are never modified or removed.
    """

    def __init__(self, *args: Any, enable_version_counter: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, enable_version_counter=enable_version_counter, **kwargs)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        earlier = state_dict.get("dirpath")
        if self.dirpath and earlier and not _same(Path(earlier), Path(self.dirpath)):
            state_dict = self._carry_over(state_dict)
        super().load_state_dict(state_dict)

    def _carry_over(self, state: dict[str, Any]) -> dict[str, Any]:
        """``state`` for this folder: the earlier run's best checkpoints copied into it, or, when
        there is nothing to carry (test mode) or the best file is gone, a fresh selection that
        refers to no file of the other folder."""
        folder = Path(self.dirpath)
        fresh = {
            **state,
            "dirpath": self.dirpath,
            "best_model_score": None,
            "best_model_path": "",
            "best_k_models": {},
            "kth_best_model_path": "",
            "kth_value": self.kth_value,
            "last_model_path": "",
        }
        sources = {Path(p): score for p, score in (state.get("best_k_models") or {}).items()}
        best = state.get("best_model_path")
        if not sources:
            return fresh
        if not all(p.is_file() for p in sources):
            log.warning(
                "The best checkpoints of the resumed run (%s) are not all there: selection "
                "starts again with the resumed epochs.",
                ", ".join(str(p) for p in sources),
            )
            return fresh
        best_k = {}
        for source, score in sources.items():
            target = folder / source.name
            if not target.exists():
                _copy(source, target)
            best_k[str(target)] = score
        log.info(
            "Resumed from another folder: the earlier run's best checkpoints (%s) were copied "
            "into %s, so selection covers every epoch.",
            ", ".join(p.name for p in sources),
            folder,
        )

        def moved(path: Any) -> str:
            candidate = str(folder / Path(str(path)).name) if path else ""
            return candidate if candidate in best_k else ""

        return {
            **fresh,
            "best_model_score": state.get("best_model_score"),
            "best_k_models": best_k,
            "best_model_path": moved(best),
            "kth_best_model_path": moved(state.get("kth_best_model_path")),
            "kth_value": state.get("kth_value", self.kth_value),
        }


def _same(a: Path, b: Path) -> bool:
    return a.expanduser().resolve() == b.expanduser().resolve()


def _copy(source: Path, target: Path) -> None:
    """Copy through a temporary file in the target folder, renamed at the end (atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp", delete=False
    ) as f:
        tmp = Path(f.name)
    try:
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
