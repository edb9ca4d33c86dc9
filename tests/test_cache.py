"""The parsed-data cache is optional: it never stops a run."""

from __future__ import annotations

import logging

import numpy as np

from src.data import cache
from src.data.cache import cached_arrays


def build_counter():
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(5.0)}

    return build, calls


def test_entries_are_reused(tmp_path):
    build, calls = build_counter()
    for _ in range(2):
        arrays = cached_arrays(tmp_path, "toy", [], {"v": 1}, build)
    assert calls == [1]
    assert np.array_equal(arrays["x"], np.arange(5.0))


def test_a_truncated_entry_is_rebuilt_and_rewritten(tmp_path, caplog):
    build, calls = build_counter()
    cached_arrays(tmp_path, "toy", [], {"v": 1}, build)
    (entry,) = tmp_path.glob("toy-*.npz")
    entry.write_bytes(entry.read_bytes()[:20])  # a half-written file: not a zip any more
    with caplog.at_level(logging.WARNING):
        arrays = cached_arrays(tmp_path, "toy", [], {"v": 1}, build)
    assert np.array_equal(arrays["x"], np.arange(5.0))
    assert "unreadable cache entry" in caplog.text
    assert len(calls) == 2
    cached_arrays(tmp_path, "toy", [], {"v": 1}, build)  # the rewritten entry is good again
    assert len(calls) == 2


def test_an_unwritable_cache_folder_warns_once_and_the_run_goes_on(tmp_path, caplog):
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the cache folder should be")
    cache._UNWRITABLE.discard(blocked)
    build, calls = build_counter()
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            arrays = cached_arrays(blocked, "toy", [], {"v": 1}, build)
    assert np.array_equal(arrays["x"], np.arange(5.0))
    assert len(calls) == 3  # nothing cached, every call builds
    warnings = [r for r in caplog.records if "cannot be written" in r.getMessage()]
    assert len(warnings) == 1
    assert "paths.cache_dir" in warnings[0].getMessage()
    assert list(tmp_path.iterdir()) == [blocked]  # no stray temporary file
