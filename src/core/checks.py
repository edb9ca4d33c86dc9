"""Value checks that every room shares: a config value against a type hint, in words, and the
integer ranges (seeds). Each refusal is one :class:`~src.core.errors.ConfigError` line naming the
key, the value and what is allowed."""

from __future__ import annotations

import datetime
import pathlib
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from src.core.errors import ConfigError

#: the seeds numpy and torch accept
SEED_RANGE = (0, 2**32 - 1)


def show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def locate(target: str) -> Any:
    """The object a dotted path names (``module.Class``, ``module.Class.attribute``), imported
    quietly: Hydra's own locator logs every failed import as an error before raising, which
    buries the one line a bad ``_target_`` gets. Raises ImportError or AttributeError."""
    import importlib

    parts = target.split(".")
    for cut in range(len(parts), 0, -1):  # the longest importable module prefix
        module_name = ".".join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name is None or not module_name.startswith(error.name):
                raise  # a module that exists but fails to import: its own error
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(f"No module named {parts[0]!r}")


def is_number(value: Any) -> bool:
    """An int or a float, not a bool (a YAML ``true`` is no number)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_int(key: str, value: Any, low: int, high: int | None = None) -> None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and value >= low and (high is None or value <= high):
        return
    allowed = f"an integer in [{low}, {high}]" if high is not None else f"an integer ≥ {low}"
    raise ConfigError(f"{key}={show(value)} is invalid: it must be {allowed}.")


def matches(value: Any, hint: Any) -> bool:
    """Whether a config value (plain Python, as resolved) fits a Lightning type hint."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if isinstance(value, Mapping) and "_target_" in value:
        return True  # instantiated by Hydra: any class
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is pathlib.Path:
        return isinstance(value, str)
    if hint is datetime.timedelta:
        return False  # given as a string or a dict
    if origin in (list, Sequence, Iterable):
        inner = args[0] if args else Any
        return isinstance(value, list) and all(matches(v, inner) for v in value)
    if origin in (dict, Mapping):
        return isinstance(value, Mapping)
    return False  # a class: only a node with a _target_ builds one


def describe(hint: Any) -> str:
    """A type hint in words: ``an integer or null``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        parts = [describe(a) for a in args if a is not type(None)]
        parts = list(dict.fromkeys(p for p in parts if p))
        text = ", ".join(parts[:-1]) + (" or " if len(parts) > 1 else "") + parts[-1]
        return text + (" or null" if type(None) in args else "")
    if origin is typing.Literal:
        return "one of " + ", ".join(show(a) for a in args)
    words = {bool: "true/false", int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if hint is pathlib.Path:
        return "a path"
    if hint is datetime.timedelta or origin in (dict, Mapping):
        return "a mapping"
    if origin in (list, Sequence, Iterable):
        return f"a list of {describe(args[0]) if args else 'values'}"
    return f"a {{_target_: …}} node ({getattr(hint, '__name__', hint)})"
