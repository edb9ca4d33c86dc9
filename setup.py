"""What pyproject.toml cannot say: the configs and the build's commit ship inside the package.

- ``conf/`` (edited at the top of the checkout) is installed as ``src/conf``: package data of
  a package mapped onto that folder, so that ``pip install .`` and the wheel work from any
  folder (:func:`src.core.env.config_dir` picks the checkout's or the installed copy).
- ``src/build_info.json`` records the commit the package was built from and whether the tree
  had uncommitted changes (:func:`src.core.provenance.provenance` reads it when the installed
  package is not a git checkout); nothing is written when the source is not a git checkout.
"""

import json
import subprocess
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


class BuildWithCommit(build_py):
    """``build_py`` that also writes ``src/build_info.json`` (commit, dirty) into the build."""

    def run(self) -> None:
        super().run()
        commit = git("rev-parse", "HEAD")
        if commit and not self.editable_mode:
            status = git("status", "--porcelain", "--untracked-files=no")
            info = {"commit": commit, "dirty": bool(status) if status is not None else None}
            target = Path(self.build_lib) / "src" / "build_info.json"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(info) + "\n")


# conf/ and each of its group folders (conf/hydra/launcher…): packages that hold only data
CONF_PACKAGES = ["src.conf", *(f"src.conf.{g}" for g in find_namespace_packages(where="conf"))]

setup(
    packages=[*find_namespace_packages(include=["src", "src.*"]), *CONF_PACKAGES],
    package_dir={"src.conf": "conf"},
    package_data={package: ["*.yaml"] for package in CONF_PACKAGES},
    cmdclass={"build_py": BuildWithCommit},
)
