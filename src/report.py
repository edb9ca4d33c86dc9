"""Aggregate a multirun: ``python -m src.report <multirun folder>``.

Reads every job folder of the sweep (its Hydra config and command-line overrides,
``metrics.json``, ``failure.txt`` and ``csv/metrics.csv``) and writes into the sweep folder:

- ``report.csv`` and ``report.md``: one row per distinct setting, with the final metrics as
  mean ± sample std over the seeds of that setting, the seeds themselves, the number of finished
  runs and of failed runs. A setting is the dataset, model and miner plus every command-line
  override whose value differs between the jobs, except ``seed`` (and bookkeeping keys that
  cannot change a result: :data:`~src.sweeps.jobs.NOT_SETTINGS`). Two grid points that
  differ only in, say, ``miner.num_negatives`` are two rows; the trials of an Optuna search are
  one row each.
- ``curves.png``: per epoch, one curve per setting (mean over its seeds) with a shaded ± 1 sample
  std band: validation ZSL accuracy and GZSL H when the jobs validated (``data.split_mode=val``),
  otherwise what a test-mode job logs per epoch: the training loss and the ``pool/``
  diagnostics.

Works on a sweep that is still running or was cut short: the jobs without results are named,
as running, interrupted or unreadable, and left out of the table, and so is every job of the
grid that has not started (no folder yet). A single run's or a protocol's folder is refused
in one line, pointing to its own results: the report writes only into multirun folders, its
own files (``report.*``, ``curves.png``, ``leaderboard.*``) and nothing else. Jobs whose
strategy never mined (every epoch, or the selected one, in the pool's random warm-up) are
named under it. A multirun of ``src.protocol`` (one protocol per dataset) gets one
leaderboard instead (:mod:`src.protocol.report.leaderboard`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from src.sweeps.curves import curve_keys, plot_curves
from src.sweeps.jobs import VAL_CURVES, find_jobs, job_label, not_started, setting_keys
from src.sweeps.tables import summarise, write_tables
from src.sweeps.warmup import warmup_notes

NO_VAL_CURVES = (
    "No validation curves: the jobs ran with data.split_mode=test (no validation loop), so "
    "curves.png shows the training loss and the pool diagnostics per epoch; run the sweep with "
    "data.split_mode=val for validation curves."
)


class NotASweepError(ValueError):
    """The folder is one run or one protocol: its own files are its report, and a report
    never writes into a folder that a command other than a sweep made."""


def refuse_single_runs(folder: Path) -> None:
    """Raise :class:`NotASweepError` for a run's or a protocol's folder (nothing is written)."""
    if (folder / "protocol_config.yaml").is_file():
        raise NotASweepError(
            f"{folder} is one protocol run, not a sweep: its results are {folder}/protocol.md "
            "and protocol.csv; nothing was written. src.report reads a multirun folder "
            "(outputs/<task>/multiruns/<date>_<time>_<tag>; one protocol per dataset gives a "
            "leaderboard)."
        )
    if (folder / ".hydra").is_dir() or (folder / "metrics.json").is_file():
        raise NotASweepError(
            f"{folder} is one run, not a sweep: its results are {folder}/metrics.json (and its "
            "log, train.log); nothing was written. src.report reads a multirun folder "
            "(outputs/<task>/multiruns/<date>_<time>_<tag>)."
        )


def report(sweep_dir: Path) -> list[dict]:
    """Write the report files of ``sweep_dir`` and return the table rows."""
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"{sweep_dir}: no such multirun folder.")
    refuse_single_runs(sweep_dir)
    jobs, skipped = find_jobs(sweep_dir)
    skipped += not_started(sweep_dir)
    if not jobs:
        raise FileNotFoundError(
            f"{sweep_dir}: no job folders (with a .hydra/ folder) found; give the folder of a "
            "multirun (outputs/<task>/multiruns/<date>_<time>_<tag>)."
        )
    keys, rows = summarise(jobs)
    settings = setting_keys(jobs)
    failed = [f"{job_label(j, settings)}: {j.error}" for j in jobs if j.status == "failed"]
    notes = []
    if any(job.curves for job in jobs) and not any(k in VAL_CURVES for k in curve_keys(jobs)):
        notes.append(NO_VAL_CURVES)
    finished = {job_label(j, settings): j.metrics for j in jobs if j.status == "finished"}
    notes += warmup_notes(finished)
    write_tables(sweep_dir, keys, rows, skipped, failed, notes)
    plot = plot_curves(sweep_dir, jobs)
    for line in failed:
        print(f"failed: {line}")
    for note in skipped:
        print(f"not in the table: {note}")
    for note in warmup_notes(finished):
        print(note)
    print((sweep_dir / "report.md").read_text())
    print(
        f"Wrote {sweep_dir / 'report.md'}, {sweep_dir / 'report.csv'}"
        + (f", {plot}" if plot else "")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "sweep_dir", type=Path, help="a multirun folder (outputs/train/multiruns/…)"
    )
    folder = parser.parse_args().sweep_dir
    from src.protocol.report.leaderboard import is_protocol_multirun, leaderboard

    try:
        if is_protocol_multirun(folder):  # a protocol per dataset: one leaderboard
            leaderboard(folder)
        else:
            report(folder)
    except (FileNotFoundError, NotASweepError) as error:  # a missing, empty or non-sweep folder
        parser.exit(1, f"Error: {error}\n")


if __name__ == "__main__":
    main()
