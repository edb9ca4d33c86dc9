"""Optional features and the extra that brings each: one line that says what to install.

- :func:`install_command`: ``pip install -e '.[<extra>]'`` in a clone (where ``pyproject.toml``
  lies beside ``src/``), ``pip install 'zsl-hardneg[<extra>]'`` for an installed package;
- :func:`missing_plugin`: before Hydra starts, the Hydra launcher or sweeper plugin that the
  command line selects (``hydra/launcher=joblib``, a preset that overrides ``hydra/launcher``…)
  and that is not installed, named with its extra; without it Hydra answers "Could not find
  'hydra/launcher/joblib'" or a long traceback. Whether a plugin is installed is whether its
  ``hydra_plugins`` module can be found, whatever versions it or Optuna have.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Sequence
from pathlib import Path

DISTRIBUTION = "zsl-hardneg"
#: Hydra plugins by the config option that selects them (options shipped by the plugin itself,
#: e.g. ``hydra/launcher=submitit_slurm``); the project's own launcher configs name theirs by
#: their ``_target_``
PLUGIN_OF_OPTION = {
    ("launcher", "joblib"): "hydra_joblib_launcher",
    ("launcher", "submitit_local"): "hydra_submitit_launcher",
    ("launcher", "submitit_slurm"): "hydra_submitit_launcher",
}
#: the extra that brings a plugin when the package's metadata cannot say (a bare clone)
DEFAULT_EXTRA = "sweeps"
#: config groups whose options may select a launcher or sweeper in their defaults list
PRESET_GROUPS = ("experiment",)
OVERRIDE = re.compile(r"^\+{0,2}(?P<key>[\w/]+)=(?P<value>[\w\-]+)$")


def in_checkout() -> bool:
    """Whether ``src`` runs from a clone (``pyproject.toml`` beside it), not an installed copy."""
    return (Path(__file__).resolve().parents[2] / "pyproject.toml").is_file()


def install_command(extra: str) -> str:
    """The command that installs ``extra``, for this clone or installed package."""
    if in_checkout():
        return f"pip install -e '.[{extra}]'"
    return f"pip install '{DISTRIBUTION}[{extra}]'"


def extra_of(distribution: str) -> str:
    """The project's extra that lists ``distribution`` (from the installed metadata)."""
    from importlib import metadata

    try:
        requirements = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return DEFAULT_EXTRA
    for requirement in requirements:
        name = re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]
        extra = re.search(r"extra\s*==\s*['\"]([\w\-]+)['\"]", requirement)
        if extra and name.replace("_", "-").lower() == distribution:
            return extra.group(1)
    return DEFAULT_EXTRA


def _plugin_of(group: str, option: str, conf_dir: Path) -> str | None:
    """The ``hydra_plugins`` module behind ``hydra/<group>=<option>``, if it needs one."""
    path = conf_dir / "hydra" / group / f"{option}.yaml"
    if path.is_file():
        text = path.read_text()
        target = re.search(r"^_target_:\s*hydra_plugins\.(\w+)\.", text, re.MULTILINE)
        if target:
            return target.group(1)
        parent = re.search(r"^defaults:\s*\n\s*-\s*(\w+)\s*$", text, re.MULTILINE)
        if parent:  # e.g. slurm.yaml extends the plugin's submitit_slurm
            return PLUGIN_OF_OPTION.get((group, parent.group(1)))
    return PLUGIN_OF_OPTION.get((group, option))


def _selected_options(overrides: Sequence[str], conf_dir: Path) -> list[tuple[str, str, str]]:
    """``(group, option, argument)`` of every launcher and sweeper the command line selects,
    directly or through a preset's ``override /hydra/<group>: <option>``."""
    selected = []
    for argument in overrides:
        match = OVERRIDE.match(argument)
        if not match:
            continue
        key, value = match["key"], match["value"]
        if key in ("hydra/launcher", "hydra/sweeper"):
            selected.append((key.split("/")[1], value, argument))
        elif key in PRESET_GROUPS:
            preset = conf_dir / key / f"{value}.yaml"
            if preset.is_file():
                for group, option in re.findall(
                    r"override /hydra/(launcher|sweeper):\s*([\w\-]+)", preset.read_text()
                ):
                    selected.append((group, option, argument))
    return selected


def missing_plugin(
    overrides: Sequence[str],
    conf_dir: str | Path,
    installed: Callable[[str], bool] | None = None,
) -> str | None:
    """One line naming the plugin that ``overrides`` need and its extra, or ``None``.

    ``installed(module)`` says whether ``hydra_plugins.<module>`` is importable (by default:
    whether its module can be found).
    """
    installed = installed or _findable
    for group, option, argument in _selected_options(overrides, Path(conf_dir)):
        module = _plugin_of(group, option, Path(conf_dir))
        if module is None or installed(module):
            continue
        distribution = module.replace("_", "-")
        through = "" if argument.lstrip("+") == f"hydra/{group}={option}" else f" (its {group})"
        return (
            f"{argument}{through} needs the Hydra plugin {distribution}, which is not "
            f"installed: {install_command(extra_of(distribution))}"
        )
    return None


def _findable(module: str) -> bool:
    try:
        return importlib.util.find_spec(f"hydra_plugins.{module}") is not None
    except (ImportError, ValueError):
        return False
