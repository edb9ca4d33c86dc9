"""Installed like a tool: the wheel's configs and commit, console scripts, completion, extras,
``--help`` and the provenance every result records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from cli_utils import ROOT, cli_env, output_tail, run_cli

from src.core.env import config_dir
from src.core.extras import PLUGIN_OF_OPTION, missing_plugin

SCRIPTS = ("zsl-train", "zsl-eval", "zsl-protocol", "zsl-features", "zsl-report", "zsl-bench")


def project() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built as ``pip wheel`` builds it."""
    folder = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(folder), "."]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, output_tail(done)
    (path,) = folder.glob("zsl_hardneg-*.whl")
    return path


@pytest.mark.slow
def test_the_wheel_holds_every_config_the_scripts_and_the_commit(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    configs = {p.relative_to(ROOT / "conf").as_posix() for p in (ROOT / "conf").rglob("*.yaml")}
    assert {f"src/conf/{c}" for c in configs} <= names
    assert "src/conf/hydra/launcher/joblib.yaml" in names  # nested groups too
    (entry_points,) = [n for n in names if n.endswith("entry_points.txt")]
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in SCRIPTS:
        assert f"{script} = src." in scripts
    info = json.loads(zipfile.ZipFile(wheel).read("src/build_info.json"))
    assert info["commit"] == git("rev-parse", "HEAD")
    assert info["dirty"] == bool(git("status", "--porcelain", "--untracked-files=no"))


@pytest.mark.slow
def test_the_installed_wheel_trains_from_another_folder(wheel, tmp_path):
    """The wheel in a fresh venv (its dependencies: this interpreter's site-packages, after the
    venv's own), ``zsl-train`` run from a folder outside the clone: it finds its configs and
    names the commit the wheel was built from."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = venv.glob("lib/python*/site-packages")
    (purelib / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python")]
    # nothing of the clone on the path: pip would take its build metadata (*.egg-info) for an
    # installed zsl-hardneg, and the job would import the clone's src
    env = {k: v for k, v in cli_env({"OMP_NUM_THREADS": "1"}).items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [*install, "install", "--no-deps", "-q", str(wheel)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, output_tail(done)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_dir = tmp_path / "run"
    args = ["trainer.max_epochs=1", f"hydra.run.dir={run_dir}", "print_config=false"]
    done = subprocess.run(
        [str(venv / "bin" / "zsl-train"), *args],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, output_tail(done)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["code/commit"] == git("rev-parse", "HEAD")
    assert metrics["code/version"] == project()["version"]
    assert not (elsewhere / "outputs").exists()  # hydra.run.dir took it
    where = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import src; print(src.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(venv))  # the installed copy ran, not the clone


def test_the_config_folder_of_a_clone_is_its_top_level_conf():
    assert config_dir() == ROOT / "conf"


def complete(line: str) -> list[str]:
    """What ``zsl-train``'s bash completion offers for ``line`` (its ``-sc query=bash``, with
    the program name a console script gives Hydra)."""
    code = "import sys; sys.argv[0] = 'zsl-train'; from src.cli.commands import train; train()"
    env = cli_env({"COMP_LINE": line, "COMP_POINT": str(len(line))})
    done = subprocess.run(
        [sys.executable, "-c", code, "-sc", "query=bash"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, output_tail(done)
    return done.stdout.split()


def test_tab_completion_of_the_console_script_offers_options_and_keys():
    assert complete("zsl-train miner=h") == ["miner=hardest"]
    assert "model=eszsl" in complete("zsl-train model=")
    # the file the xlsa17 datasets share is no dataset to offer
    assert complete("zsl-train data=") == [
        f"data={name}"
        for name in ("apy", "apy_annotations", "awa1", "awa2", "cub", "images", "sun", "synthetic")
    ]
    code = "import sys; sys.argv[0] = 'zsl-train'; from src.cli.commands import train; train()"
    done = subprocess.run(
        [sys.executable, "-c", code, "-sc", "install=bash"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout.rstrip().endswith("-F hydra_bash_completion zsl-train")


def test_help_lists_the_datasets_and_not_the_file_they_share():
    result = run_cli("src.train", ["--help"])
    assert "data: apy, apy_annotations, awa1, awa2, cub, images, sun, synthetic\n" in result.stdout
    assert "xlsa17_defaults" not in result.stdout
    assert "miner: all, correlation, hardest," in result.stdout


def test_a_missing_plugin_names_the_argument_and_the_extra_that_brings_it():
    def nothing(module: str) -> bool:
        return False

    conf = config_dir()
    line = missing_plugin(["-m", "hydra/launcher=joblib", "seed=1,2"], conf, nothing)
    assert "hydra/launcher=joblib needs the Hydra plugin hydra-joblib-launcher" in line
    assert "hydra-submitit-launcher" in missing_plugin(["hydra/launcher=slurm"], conf, nothing)
    assert missing_plugin(["hydra/launcher=joblib"], conf, lambda module: True) is None
    assert missing_plugin(["miner=hardest", "seed=1,2"], conf, nothing) is None


def test_every_plugin_named_is_in_the_extra_named():
    extras = project()["optional-dependencies"]
    plugins = {module.replace("_", "-") for module in PLUGIN_OF_OPTION.values()}
    assert plugins == {"hydra-joblib-launcher", "hydra-submitit-launcher"}
    for plugin in plugins:
        assert any(r.startswith(plugin) for r in extras["sweeps"]), plugin


def test_a_missing_plugin_stops_the_command_in_one_line(tmp_path):
    """A plugin that cannot be found (a path entry shadows ``hydra_plugins``' real one)."""
    shadow = tmp_path / "shadow" / "hydra_plugins"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")  # a regular package: hides the namespace package
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path / "shadow"), cli_env()["PYTHONPATH"]])}
    result = run_cli("src.train", ["-m", "hydra/launcher=joblib", "seed=1,2"], check=False, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: hydra/launcher=joblib needs the Hydra plugin hydra-joblib-launcher, which is "
        "not installed: pip install -e '.[sweeps]'"
    ]
