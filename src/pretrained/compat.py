"""torchvision (and so timm and open_clip) beside a CPU-only torch, handled in one place.

The torchvision wheel of the package index is a CUDA build. Beside a CPU-only torch its C++
extension cannot load, and its meta registrations then name two operators that were never
defined: ``import torchvision`` fails with ``RuntimeError: operator torchvision::nms does not
exist``. timm and open_clip import it, and so does torchmetrics (its image metrics) whenever
torchvision is installed: with the ``features`` extra installed, even ``import lightning``
would fail. Only the detection operators live in that extension; the classification models,
their weights and their transforms are plain PyTorch.

:func:`install_guard` (run by ``src/__init__.py``; it imports nothing heavy) puts a finder in
front of ``sys.meta_path`` that acts on the first import of torchvision, whoever imports it:
it tries to load torchvision's extension library and, **only when that fails**, defines the
two operator schemas (``torchvision::nms`` and ``torchvision::qnms``, no kernel: detection
stays unavailable) so that torchvision imports. :func:`import_torchvision` (what
``src.features`` uses) imports it and says in one warning line when the guard had to act.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

log = logging.getLogger(__name__)

#: the schemas torchvision's meta registrations expect when its extension did not load
SCHEMAS = (
    "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
)
#: why the extension did not load, once the guard defined the schemas (else None)
state: dict[str, str | None] = {"defined": None}
_library = None  # the schemas' torch.library.Library, kept alive (it unregisters when freed)


def extension_problem() -> str | None:
    """Why torchvision's C++ extension cannot load beside this torch (None: it loads, or
    torchvision is not installed or has no extension file)."""
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("_C*.so")) + sorted(folder.glob("_C*.pyd"))
    if not files:
        return None
    import torch

    try:
        torch.ops.load_library(str(files[0]))
    except (OSError, RuntimeError) as err:
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


def define_missing_operators(reason: str) -> None:
    """Define ``torchvision::nms`` and ``torchvision::qnms`` (schemas only), once."""
    global _library
    if _library is not None:
        return
    import torch

    _library = torch.library.Library("torchvision", "DEF")
    for schema in SCHEMAS:
        _library.define(schema)
    state["defined"] = reason


class TorchvisionGuard(importlib.abc.MetaPathFinder):
    """Acts once, on the first import (or ``find_spec``) of ``torchvision``; finds nothing."""

    def find_spec(self, name, path=None, target=None):
        if name != "torchvision":
            return None
        remove_guard()
        problem = extension_problem()
        if problem is not None:
            define_missing_operators(problem)
        return None


def install_guard() -> None:
    """Put :class:`TorchvisionGuard` first in ``sys.meta_path`` unless torchvision is loaded."""
    if "torchvision" in sys.modules or any(isinstance(f, TorchvisionGuard) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, TorchvisionGuard())


def remove_guard() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, TorchvisionGuard)]


def import_torchvision() -> ModuleType:
    """``torchvision``, importable beside a CPU-only torch (see the module's docstring), or one
    line naming the extra to install."""
    from src.core.extras import install_command

    install_guard()
    try:
        import torchvision
    except ModuleNotFoundError as err:
        raise ImportError(
            f"image features need the optional features dependencies: {install_command('features')}"
        ) from err
    if state["defined"] is not None and not state.get("warned"):
        import torch

        state["warned"] = "yes"
        log.warning(
            "torchvision %s's C++ extension does not load beside torch %s (%s): its detection "
            "operators are unavailable; its classification models run as plain PyTorch.",
            torchvision.__version__,
            torch.__version__,
            state["defined"][:120],
        )
    return torchvision
