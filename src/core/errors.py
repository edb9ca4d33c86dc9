"""User mistakes end a job with one line; bugs keep their traceback.

A *user error* is an exception whose message already says what is wrong and what to do: a
config value (:class:`ConfigError`, or a ``ValueError`` whose message starts with the key,
``model.rank=86 is invalid…``), a data file (``DataError``), a checkpoint (``CheckpointError``,
a missing ``ckpt_path``), a run folder (``RunFolderError``), a diverged loss, an invalid
Lightning setting (``MisconfigurationException``), a required value left unset (``???``) or
a missing optional package.
:func:`user_message` finds one in an exception's chain (Hydra wraps constructor errors in an
``InstantiationException``) and returns its message as one line; :class:`JobError` carries it
to Hydra, which prints it without a traceback (``HYDRA_FULL_ERROR=1`` shows the traceback).
"""

from __future__ import annotations

import re

from hydra.errors import CompactHydraException

#: a message that starts by naming a config key and its value: ``model.rank=86 is invalid…``
KEY_VALUE = re.compile(r"^[A-Za-z_][\w.\-/]*=")
#: exception classes (by name) whose messages are written for the user; matched by name so
#: that this module imports nothing heavy
USER_ERROR_CLASSES = {
    "ConfigError",
    "DataError",
    "CheckpointError",
    "RunFolderError",
    "NonFiniteLossError",
    "DivergedLossError",
    "MisconfigurationException",
}


class ConfigError(ValueError):
    """A config value is invalid; the message names the key, the value and what is allowed."""


class JobError(CompactHydraException):
    """A job stopped on a user error: Hydra prints the message alone (no traceback)."""


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _is_user_error(error: BaseException) -> bool:
    names = {cls.__name__ for cls in type(error).__mro__}
    if names & USER_ERROR_CLASSES:
        return True
    text = str(error)
    if isinstance(error, FileNotFoundError) and KEY_VALUE.match(text):
        return True  # read_checkpoint: "ckpt_path=…: no such checkpoint file."
    if isinstance(error, ImportError) and "pip install" in text:
        return True  # an optional package, with the command that installs it
    return isinstance(error, (ValueError, TypeError)) and bool(KEY_VALUE.match(text))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def user_message(error: BaseException) -> str | None:
    """The one-line message of the user error in ``error``'s chain; ``None`` for a bug."""
    for link in _chain(error):
        if type(link).__name__ == "MissingMandatoryValue":  # a ??? value left unset
            key = getattr(link, "full_key", None) or "a required value"
            return f"{key} is required and has no value: give it on the command line ({key}=…)."
        if _is_user_error(link):
            message = one_line(link)
            if type(link).__name__ == "MisconfigurationException":
                message = f"trainer: {message} (a Lightning Trainer setting: trainer.<arg>=…)"
            return message
    return None
