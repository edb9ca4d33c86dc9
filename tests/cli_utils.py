"""Running the entry points in tests as a user would: ``python -m <module> <overrides>``.

One runner for every test that starts a process::

    from cli_utils import run_cli

    result = run_cli("src.train", ["+experiment=hard_neg", f"paths.log_dir={tmp_path}"])
    result.returncode, result.stdout, result.stderr  # a subprocess.CompletedProcess

By default a non-zero exit fails the test, its message holding the tails of stdout and
stderr; pass ``check=False`` to assert on a failing command yourself. ``env`` adds or
replaces environment variables. Every process runs from the repository root with
``WANDB_MODE=offline`` and the repository and ``tests/`` on ``PYTHONPATH`` (so a test
module's callback can be named in an override). For processes that must run side by side,
build them from :func:`cli_command` and :func:`cli_env` with ``subprocess.Popen``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 600
TAIL_CHARS = 3000


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, offline W&B, the repository and ``tests/`` importable,
    then ``extra``."""
    path = [str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH")]
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, path)),
        "WANDB_MODE": "offline",
        **(extra or {}),
    }


def cli_command(module: str, args: Sequence[str] = ()) -> list[str]:
    """``[python, -m, module, *args]`` with this test session's interpreter."""
    return [sys.executable, "-m", module, *map(str, args)]


def output_tail(result: subprocess.CompletedProcess, chars: int = TAIL_CHARS) -> str:
    """The exit status and the last ``chars`` characters of stdout and of stderr."""
    return (
        f"`{' '.join(map(str, result.args))}` exited with {result.returncode}\n"
        f"--- stdout (tail) ---\n{(result.stdout or '')[-chars:]}\n"
        f"--- stderr (tail) ---\n{(result.stderr or '')[-chars:]}"
    )


def run_cli(
    module: str,
    args: Sequence[str] = (),
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> <args>`` to completion and return it (text stdout/stderr).

    ``check``: fail the test on a non-zero exit, showing :func:`output_tail`. ``env``: extra
    variables over :func:`cli_env`. ``timeout``: seconds before the process is killed and
    the test fails (``subprocess.TimeoutExpired``).
    """
    result = subprocess.run(
        cli_command(module, args),
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, output_tail(result)
    return result


def launch_in_process(job, config: str, argv: Sequence[str], capfd) -> tuple[int, str]:
    """``(exit status, console text)`` of an entry point run in this process, as
    ``python <argv…>`` would (``argv[0]`` names the script): Hydra's global state, ``sys.argv``
    and the root logger are restored afterwards; ``capfd`` is pytest's fixture."""
    import logging

    from hydra.core.global_hydra import GlobalHydra

    from src.cli.entry import launch

    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    saved_argv, sys.argv = sys.argv, list(argv)
    GlobalHydra.instance().clear()
    try:
        launch(job, config)
        code = 0
    except SystemExit as stop:
        code = stop.code
    finally:
        sys.argv = saved_argv
        GlobalHydra.instance().clear()
        root.handlers[:] = handlers
        root.setLevel(level)
    out, err = capfd.readouterr()
    return code, out + err


def load_script(name: str):
    """The module of ``scripts/<name>.py`` (scripts are no package), imported from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
