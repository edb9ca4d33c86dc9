"""A protocol's results table as the docs show it, regenerated from its run folder, never edited
by hand:

    python -m src.protocol.report.table <protocol folder> [<protocol folder> ...]

Prints, per folder, the line that names what produced the table (the data, the command with
the folder's overrides, the commit and whether its checkout had uncommitted changes), then the
table of ``protocol.csv`` (the same as ``protocol.md``'s). Exit status 1 with one line when a
folder is not a finished protocol run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from src.protocol.report.recompute import read_csv
from src.protocol.report.results import markdown_table


def provenance(folder: Path, rows: list[dict]) -> str:
    """``Data …; command …; commit …``: what produced the folder's table."""
    overrides_file = folder / ".hydra" / "overrides.yaml"
    overrides = (
        [str(o) for o in OmegaConf.load(overrides_file) if not str(o).startswith("hydra.")]
        if overrides_file.is_file()
        else []
    )
    command = " ".join(["python -m src.protocol", *overrides])
    codes = {row.get("code", "") for row in rows} - {""}
    if len(codes) == 1:
        code = json.loads(codes.pop())
        commit = f"commit `{str(code.get('commit'))[:7]}`" + (
            " with uncommitted changes" if code.get("dirty") else ""
        )
    else:
        commit = "rows from several commits" if codes else "commit not recorded"
    source = ""
    config = folder / "protocol_config.yaml"
    if config.is_file():
        data = OmegaConf.to_container(OmegaConf.load(config).get("data", {}), resolve=False)
        name = data.get("dataset") or data.get("_target_", "?").rsplit(".", 1)[-1]
        source = f"Data: {name} (signatures: {data.get('signatures', 'attributes')}); "
    return f"*{source}`{command}`; {commit}.*"


def table(folder: Path) -> str:
    """The provenance line and the table of one protocol folder."""
    rows = read_csv(folder)
    return provenance(folder, rows) + "\n\n" + markdown_table(rows)


def main(argv: list[str] | None = None) -> None:
    folders = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not folders:
        raise SystemExit("usage: python -m src.protocol.report.table <protocol folder> [...]")
    print("\n\n".join(table(folder) for folder in folders))


if __name__ == "__main__":
    main()
