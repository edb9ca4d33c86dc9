"""A disk cache of parsed arrays, so that slow parsing happens once per content and options.

An entry is one ``.npz`` file named by the SHA-1 of the source files' bytes and of the parsing
options: editing a source file or changing an option makes a new entry, so an entry is never
stale. Entries are never deleted automatically; removing the cache folder is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.data.arrays import array_digest

log = logging.getLogger(__name__)

# Bump when the meaning of cached arrays changes, so that old entries are no longer found.
CACHE_FORMAT = 1
#: cache folders already reported as unwritable (one warning per folder and process)
_UNWRITABLE: set[Path] = set()


def file_sha1(path: Path) -> str:
    """SHA-1 of a file's bytes, read in chunks so that large feature files fit in memory."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(sources: Sequence[Path], options: Mapping[str, Any]) -> str:
    """SHA-1 of the sources' contents (and names) and of the JSON-encoded options."""
    payload = {
        "format": CACHE_FORMAT,
        "options": options,
        "sources": [[Path(p).name, file_sha1(Path(p))] for p in sources],
    }
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cached_arrays(
    cache_dir: str | Path | None,
    name: str,
    sources: Sequence[Path],
    options: Mapping[str, Any],
    build: Callable[[], dict[str, np.ndarray]],
    digests: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Return ``build()``, from ``cache_dir`` when an entry for these sources and options exists.

    Args:
        cache_dir: the cache folder; ``None`` disables caching.
        name: prefix of the entry's file name (e.g. the dataset), for people browsing the folder.
        sources: the files ``build`` reads; their bytes are part of the key.
        options: everything else that changes ``build``'s result (JSON-serialisable).
        build: parses the sources; returns named arrays (no object arrays).
        digests: arrays whose content hash (:func:`~src.data.arrays.array_digest`) is computed
            once, when the entry is built, and stored in it as ``digest.<name>``: a dataset's
            fingerprint then reads it instead of hashing a large array again in every process.
    """
    if cache_dir is None:
        return build()  # nothing kept: the fingerprint hashes the arrays itself
    folder = Path(cache_dir).expanduser()
    path = folder / f"{name}-{cache_key(sources, options)[:20]}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in stored.files}
            if all(f"digest.{key}" in arrays for key in digests):
                log.info("Loaded %s from the cache %s", name, path)
                return arrays
            arrays = with_digests(arrays, digests)  # an entry of an older version: completed
            store(arrays, folder, path, name)
            return arrays
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
            # A half-written or damaged entry is rebuilt rather than trusted.
            log.warning("Ignoring the unreadable cache entry %s (%s); rebuilding it", path, err)
    arrays = with_digests(build(), digests)
    store(arrays, folder, path, name)
    return arrays


def with_digests(arrays: dict[str, np.ndarray], names: Sequence[str]) -> dict[str, np.ndarray]:
    """``arrays`` plus ``digest.<name>`` (a 0-d string array) for each of ``names``."""
    return arrays | {f"digest.{key}": np.array(array_digest(arrays[key])) for key in names}


def store(arrays: dict[str, np.ndarray], folder: Path, path: Path, name: str) -> None:
    """Write an entry (then rename, so a concurrent reader never sees a partial one).

    The cache is optional: a folder that cannot be written (read-only, not a folder, full) is
    reported once and the run goes on without caching.
    """
    temporary = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, suffix=".npz", delete=False) as handle:
            temporary = handle.name
            np.savez(handle, **arrays)
        os.replace(temporary, path)
        log.info("Cached %s in %s", name, path)
    except OSError as err:
        if temporary is not None and os.path.exists(temporary):
            os.remove(temporary)
        if folder not in _UNWRITABLE:
            _UNWRITABLE.add(folder)
            log.warning(
                "The cache folder %s cannot be written (%s): going on without the cache; set "
                "paths.cache_dir to a writable folder, or data.cache_dir=null.",
                folder,
                err.strerror or err,
            )


def known_digests(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """``{name: digest}`` of the ``digest.<name>`` entries of a cached entry's arrays."""
    return {k.removeprefix("digest."): str(v) for k, v in arrays.items() if k.startswith("digest.")}
