"""Recompute rows of ``protocol.csv``, intervals included, from a protocol folder alone.

    python -m src.protocol.report.recompute <protocol folder> [--row NAME ...]

Reads the test distances the protocol kept (``references/<name>.npz``,
``refit/<row>/seed<k>.npz``), the saved settings (``protocol_config.yaml``: seeds and bootstrap)
and the rows' ``val_score`` / ``chosen`` from ``protocol.csv``; recomputes every metric
(:func:`~src.metrics.gzsl_results`, rounded to float32 as the runs logged it), the means and stds
over seeds and the bootstrap intervals; prints each row beside ``protocol.csv`` and exits with 1
when a value differs. No model, data file or training is needed.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from src.protocol.settings import ProtocolSettings

#: protocol.csv's columns that are not numbers
TEXT = ("name", "kind", "chosen", "code", "same_as")


def recompute_rows(
    folder: Path, names: list[str] | None = None, damaged: list | None = None
) -> list[dict]:
    """The rows of ``protocol.csv`` named ``names`` (all by default), recomputed. A row whose
    kept file is damaged is left out and listed in ``damaged`` as (row, message)."""
    from src.metrics import gzsl_results
    from src.protocol.kept import (
        KeptFileError,
        load_credits,
        load_scores,
        odd_message,
        odd_test_sets,
        prediction_files,
        search_folders,
    )
    from src.protocol.report.results import summarise
    from src.protocol.verdicts import add_intervals, mark_aliases, resampled_rows

    damaged = [] if damaged is None else damaged
    saved = read_csv(folder)
    unknown = sorted(set(names or []) - {r["name"] for r in saved})
    if unknown:
        raise SystemExit(f"--row {', '.join(unknown)}: not a row of {folder / 'protocol.csv'}.")
    config = OmegaConf.load(folder / "protocol_config.yaml")
    settings = ProtocolSettings.from_config(config.protocol)
    folders = search_folders(folder, settings, int(config.get("seed", 0)))
    b = settings.bootstrap
    resamples, seed, level = b.resamples, b.seed, b.level
    rows, runs, keys, row_files = [], {}, {}, {}
    for old in saved:
        if names and old["name"] not in names:
            continue
        paths = prediction_files(folder, old["name"], old["kind"], settings.seeds, folders)
        metrics = []
        try:
            loaded = [load_scores(path) for path in paths]
        except KeptFileError as error:  # this row cannot be checked; the others still are
            damaged.append((old["name"], str(error)))
            continue
        for scores, gamma, _ in loaded:
            values = gzsl_results(scores, gamma)
            metrics.append({f"test/{k}": float(np.float32(v)) for k, v in values.items()})
        rows.append(summarise(old["name"], old["kind"], metrics, old["val_score"], {}))
        rows[-1]["chosen"] = old["chosen"]
        runs[old["name"]] = load_credits(paths, keys)
        row_files[old["name"]] = paths
    # a kept file scored on another test set (copied in from another run): its row is not checked
    odd = odd_test_sets(keys)
    for name in [n for n, paths in row_files.items() if any(p in odd for p in paths)]:
        path = next(p for p in row_files[name] if p in odd)
        damaged.append((name, odd_message(path, len(keys) - len(odd))))
        rows = [r for r in rows if r["name"] != name]
        del runs[name]
    add_intervals(rows, resampled_rows(runs, resamples, seed, None, settings.searches), level)
    files = {
        r["name"]: prediction_files(folder, r["name"], r["kind"], settings.seeds, folders)
        for r in rows
    }
    mark_aliases(rows, files)
    for row in rows:  # the aliases of a --row selection are among the selected rows only
        old = next(o for o in saved if o["name"] == row["name"])
        if names is None and not damaged and old.get("same_as", "") != row["same_as"]:
            row["alias_differs"] = (
                f"same_as: protocol.csv {old.get('same_as')!r}, recomputed {row['same_as']!r}"
            )
    return rows


def read_csv(folder: Path) -> list[dict]:
    path = folder / "protocol.csv"
    if not path.is_file():
        raise SystemExit(f"{path}: no such file (give the folder of a finished protocol run).")
    with path.open() as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key not in TEXT:
                row[key] = float(value) if value != "" else math.nan
        row["runs"] = int(row["runs"])
    return rows


def differences(old: dict, new: dict) -> list[str]:
    out = []
    for key, value in new.items():
        if key in TEXT:
            continue
        if key == "alias_differs":
            out.append(value)
            continue
        before = old.get(key, math.nan)
        same = (math.isnan(before) and math.isnan(value)) or before == value
        if not same:
            out.append(f"{key}: protocol.csv {before!r}, recomputed {value!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.protocol.report.recompute", description=__doc__
    )
    parser.add_argument("folder", type=Path, help="a protocol run folder")
    parser.add_argument("--row", nargs="*", default=None, help="row names (default: all)")
    args = parser.parse_args(argv)
    damaged: list[tuple[str, str]] = []
    try:
        rows = recompute_rows(args.folder, args.row, damaged)
    except FileNotFoundError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    saved = {r["name"]: r for r in read_csv(args.folder)}
    failed = bool(damaged)
    for row in rows:
        diff = differences(saved[row["name"]], row)
        failed |= bool(diff)
        zsl, low, high = (row[f"test/zsl_acc{s}"] for s in ("", "_ci_low", "_ci_high"))
        h, h_low, h_high = (row[f"test/gzsl_H_cal{s}"] for s in ("", "_ci_low", "_ci_high"))
        status = "matches protocol.csv" if not diff else "DIFFERS: " + "; ".join(diff)
        print(
            f"{row['name']}: ZSL {zsl:.4f} [{low:.4f}, {high:.4f}] · H_cal {h:.4f} "
            f"[{h_low:.4f}, {h_high:.4f}] · {row['runs']} run(s) · {status}"
        )
    for name, message in damaged:
        print(f"Error: {message} Row `{name}` cannot be checked.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
