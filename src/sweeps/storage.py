"""Helpers that the sweeper configs instantiate (``conf/hparams_search/``)."""

from __future__ import annotations

from pathlib import Path


def sqlite_url(path: str) -> str:
    """``sqlite:///<absolute path>`` of a database file, with its folder created.

    The Optuna study of ``conf/hparams_search/optuna.yaml`` is stored in the sweep folder, which
    Hydra creates only when it launches the first job: after the sweeper has opened the study.

    Example:
        >>> import tempfile
        >>> folder = tempfile.mkdtemp()
        >>> sqlite_url(f"{folder}/sweep/optuna.db") == f"sqlite:///{folder}/sweep/optuna.db"
        True
        >>> Path(folder, "sweep").is_dir()
        True
    """
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"
