"""Comparing two configs key by key: which settings differ, named in one line.

Configs are compared flat (``{"model.lr": 0.001, ...}``): numbers as numbers, a ``_target_`` by
the class it names, and the bookkeeping keys that cannot change a result (:data:`BOOKKEEPING`)
aside. A resumed run, a job of ``resume_sweep`` and a continued protocol compare their config
with the saved one this way.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from typing import Any

#: config keys that cannot change a result (prefixes end with a dot): never compared between a
#: job and its saved config, never a "setting" of the report
BOOKKEEPING = (
    "ckpt_path",
    "resume_sweep",
    "overwrite",
    "print_config",
    "tags",
    "task_name",
    "paths.",
    "logger",
    "logger.",
    "hydra.",
    "callbacks.rich_progress_bar",
    "callbacks.rich_progress_bar.",
)


def matches(key: str, patterns: Iterable[str]) -> bool:
    """Whether ``key`` is one of ``patterns`` or lies under one that ends with a dot."""
    return any(key == p or (p.endswith(".") and key.startswith(p)) for p in patterns)


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model.lr": 0.001, ...}`` of a nested dict (lists stay values)."""
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: node}


def differing_keys(
    saved: Mapping[str, Any], current: Mapping[str, Any], ignored: Iterable[str] = BOOKKEEPING
) -> list[str]:
    """Flat keys whose values differ (numbers compared as numbers), ``ignored`` aside."""
    ignored = tuple(ignored)
    keys = set(saved) | set(current)
    return sorted(
        k
        for k in keys
        if not matches(k, ignored)
        and _normal(saved.get(k, _UNSET), k) != _normal(current.get(k, _UNSET), k)
    )


_UNSET = "<unset>"


def is_target(key: str) -> bool:
    """Whether a flat key is a ``_target_`` (``model._target_``)."""
    return key.rsplit(".", 1)[-1] == "_target_"


def canonical_target(path: Any) -> Any:
    """A ``_target_`` by its defining module: ``src.models.MetricZSLSystem`` (a re-export, as
    configs spelt it before) → ``src.models.system.MetricZSLSystem``, so both spellings of one
    class compare equal. A value that does not import is returned as it is."""
    if not isinstance(path, str):
        return path
    module_path, _, name = path.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module_path), name)
    except Exception:  # an old or mistyped path is compared as written
        return path
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if module and name else path


def _normal(value: Any, key: str = "") -> Any:
    if is_target(key):
        return canonical_target(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def describe_changes(
    keys: list[str], saved: Mapping[str, Any], current: Mapping[str, Any], limit: int = 6
) -> str:
    """``model.lr (0.001 → 0.5), seed (1 → 2)``; at most ``limit`` keys, then a count."""
    shown = [f"{k} ({saved.get(k, _UNSET)} → {current.get(k, _UNSET)})" for k in keys[:limit]]
    more = len(keys) - limit
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")
