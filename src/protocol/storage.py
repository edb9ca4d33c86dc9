"""Where a protocol's Optuna studies live, and every way that can go wrong, each in one line.

By default one SQLite file per study in the run folder; ``protocol.storage`` names a shared one
instead: an RDB URL (``postgresql://…``, ``mysql://…``, ``sqlite:///…``) or a JournalStorage
file (a path ending in ``.journal``, for a network disk), whose studies are then named after the
run folder as well (:func:`storage_for`). Before anything runs, :func:`storage_problem` names a
missing driver, an unreachable server or an unwritable folder; when a study opens, a damaged
file is a :class:`StorageError` (:func:`damage`, :func:`journal_problem`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import optuna

from src.data.arrays import DataError

log = logging.getLogger(__name__)


#: file endings of ``protocol.storage`` that name a JournalStorage file
JOURNAL_SUFFIXES = (".journal", ".log")


def storage_for(setting: str | None, folder: Path, name: str) -> tuple[str, str]:
    """(storage, study name) of row ``name`` in the protocol folder ``folder``.

    ``setting`` is ``protocol.storage``: ``None`` gives ``<folder>/search/<name>.db`` (SQLite,
    study ``name``); an RDB URL (``sqlite:///…``, ``postgresql://…``, ``mysql://…``) or a
    JournalStorage file (a path ending in ``.journal`` or ``.log``, for a shared disk where
    SQLite locks fail) holds every row of every protocol pointed at it, so there a study is
    named ``<folder>:<name>`` (``folder`` absolute: the protocol's identity). Example::

        >>> storage_for(None, Path("/runs/a"), "random")
        ('sqlite:////runs/a/search/random.db', 'random')
        >>> storage_for("/shared/zsl.journal", Path("/runs/a"), "random")
        ('/shared/zsl.journal', '/runs/a:random')
    """
    if setting is None:
        return f"sqlite:///{folder / 'search' / f'{name}.db'}", name
    return str(setting), f"{folder.resolve()}:{name}"


#: the package that brings each database driver module SQLAlchemy imports
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "psycopg[binary]",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
}


def driver_problem(url: str) -> str | None:
    """What SQLAlchemy lacks to open the database server ``url`` (``None``: its driver is
    installed; whether the server answers is Optuna's to say). The dialect and its driver are
    SQLAlchemy's own choice (``postgresql://`` → psycopg in SQLAlchemy 2.1,
    ``postgresql+psycopg2://`` → psycopg2, ``mysql+pymysql://`` → pymysql…); psycopg has the
    extra ``postgres``."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from src.core.extras import install_command

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError) as error:
        return f"not a database URL SQLAlchemy knows ({str(error).splitlines()[0]})"
    try:
        dialect.import_dbapi()
    except ImportError as error:
        module = getattr(error, "name", None) or str(error)
        if module == "psycopg":  # SQLAlchemy 2.1's default for postgresql://
            install = install_command("postgres")
        else:
            install = f"pip install '{DRIVER_PACKAGES.get(module.split('.')[0], module)}'"
        return (
            f"SQLAlchemy's {parsed.drivername} driver needs the Python module {module!r}, "
            f"which is not installed: {install}"
        )
    return None


def storage_problem(setting: Any) -> str | None:
    """What is wrong with ``protocol.storage`` (``None``: nothing). A SQLite URL or a journal
    file needs an existing parent folder: a protocol never creates folders outside its own, so
    a mistyped path is named instead of appearing silently somewhere. Example::

        >>> storage_problem("/nonexistent/dir/x.journal")  # doctest: +ELLIPSIS
        'its folder /nonexistent/dir does not exist: create it first (mkdir -p ...'
        >>> storage_problem("runs.db") is not None
        True

    A database server's URL needs the driver SQLAlchemy loads for it (:func:`driver_problem`).
    """
    if not isinstance(setting, str) or not setting:
        return "use null (SQLite in the run folder), an RDB URL or a .journal file"
    if "://" in setting:
        if not setting.startswith("sqlite:///"):
            return driver_problem(setting) or connection_problem(setting)
        path = setting.removeprefix("sqlite:///")
        if not path or path == ":memory:":
            return "use a SQLite file (sqlite:///path/to/file.db): an in-memory study is lost"
    elif setting.endswith(JOURNAL_SUFFIXES):
        path = setting
    else:
        return (
            "use null (SQLite in the run folder), an RDB URL (sqlite:///path.db, "
            "postgresql://…) or a JournalStorage file ending in .journal or .log"
        )
    folder = Path(path).expanduser().parent
    if not folder.is_dir():
        return (
            f"its folder {folder} does not exist: create it first (mkdir -p {folder}), or use "
            "null (SQLite in the run folder)"
        )
    return write_problem(Path(path).expanduser())


def write_problem(file: Path) -> str | None:
    """Whether the storage file ``file`` (and a lock file beside it) can be written: a file is
    created and removed in its folder, and an existing file is opened for appending (nothing
    is written to it). ``None``: it can."""
    try:
        with tempfile.NamedTemporaryFile(dir=file.parent, prefix=".zsl-write-check-"):
            pass
        if file.exists():
            with file.open("ab"):
                pass
    except OSError as error:
        where = file if file.exists() else file.parent
        return (
            f"{where} cannot be written ({error.strerror or error}): give a storage in a folder "
            "you can write to, or use null (SQLite in the run folder)"
        )
    return None


#: seconds a database server has to answer the protocol's first connection
CONNECT_TIMEOUT_S = 10


def connection_problem(url: str) -> str | None:
    """Whether the database server of ``url`` answers (one connection, opened and closed, with
    a :data:`CONNECT_TIMEOUT_S` timeout), so that an unreachable host or a refused login is
    named before any data is read. ``None``: it answers."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    if parsed.get_backend_name() not in ("postgresql", "mysql", "mariadb"):
        connect_args = {}
    engine = sqlalchemy.create_engine(url, connect_args=connect_args)
    try:
        with engine.connect():
            pass
    except Exception as error:  # the driver's own errors, whatever the dialect
        reason = " ".join(str(getattr(error, "orig", None) or error).split())
        host = f"{parsed.host or 'localhost'}:{parsed.port or 'default port'}"
        return (
            f"the database server at {host} does not answer ({reason[:200]}): start it or "
            "correct the URL, or use null (SQLite in the run folder) or a .journal file"
        )
    finally:
        engine.dispose()
    return None


def open_storage(url: str):
    """The Optuna storage of ``url``: a JournalStorage for a journal file, else the URL (RDB).

    A SQLite study written by optuna 2.x must be upgraded first (one-way): a
    :class:`~src.core.errors.ConfigError` says so in one line."""
    from src.core.errors import ConfigError

    if url.endswith(JOURNAL_SUFFIXES) and "://" not in url:
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        lock = JournalFileOpenLock(url)
        lock.acquire()  # Optuna's writers append under this lock: no line is half-written now
        try:
            problem = journal_problem(Path(url))
        finally:
            lock.release()
        if problem:
            raise StorageError(damaged_storage(url, problem, "its rows"))

        return optuna.storages.JournalStorage(JournalFileBackend(url, JournalFileOpenLock(url)))
    try:
        return optuna.storages.RDBStorage(url)
    except RuntimeError as error:
        if "storage upgrade" not in str(error):
            raise
        raise ConfigError(
            f"{url} holds a study written by an older Optuna: run `optuna storage upgrade "
            f"--storage {url}` once (one-way; back the file up first), then run again."
        ) from None


def journal_problem(path: Path) -> str | None:
    """What is wrong with a JournalStorage file (``None``: nothing, or no file yet), read under
    its lock: every line must be one JSON operation ending in a newline.

    A last line cut short is what a process killed while appending leaves. Optuna skips it on
    reading, but its next append would be glued to it and make the file unreadable, so it is
    removed here (it is an operation that never took effect: the trial it belonged to is
    closed and runs again), with a warning naming the file and the bytes removed."""
    import json

    if not path.is_file():
        return None
    data = path.read_bytes()
    lines = data.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    for number, line in enumerate(complete, 1):
        try:
            if not isinstance(json.loads(line), dict):
                raise ValueError("not an object")
        except ValueError:
            return f"line {number} is not one of Optuna's operations"
    if tail and not complete:
        return "its only line is cut short"
    if tail:
        with path.open("r+b") as f:
            f.truncate(len(data) - len(tail))
        log.warning(
            "%s ended in an operation cut short (%d bytes, a process killed while writing): "
            "removed; the trial it belonged to runs again",
            path,
            len(tail),
        )
    return None


class StorageError(DataError):
    """A study storage (a ``.db`` or ``.journal`` file) that cannot be read: one line."""


def damage(error: BaseException) -> str | None:
    """What a SQLite storage that failed to open says of its own damage (``None``: not damage,
    e.g. a locked database, which is left to raise): "file is not a database" or "database
    disk image is malformed". A journal is checked before Optuna reads it
    (:func:`journal_problem`)."""
    from sqlalchemy.exc import DatabaseError

    if not isinstance(error, DatabaseError):
        return None
    text = str(getattr(error, "orig", None) or error)
    damaged = ("not a database", "malformed", "file is encrypted")
    return text.splitlines()[0] if any(d in text for d in damaged) else None


def damaged_storage(where: str, reason: str, rows: str) -> str:
    """The one line of a storage file that cannot be read, ``rows`` being what it searched."""
    return (
        f"{where} is not a readable study storage ({reason}): it was truncated or overwritten. "
        f"Restore it from a copy, or move it away to search {rows} again (their trials are "
        "then lost)."
    )
