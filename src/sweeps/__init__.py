"""Sweeps (Hydra multiruns): their checks and progress while they run, their report after.

While a sweep runs (Hydra callbacks named in ``conf/hydra/default.yaml``):

- :mod:`~src.sweeps.check`: ``resume_sweep=<folder>`` checked before anything is launched;
- :mod:`~src.sweeps.progress`: one line per finished job, a summary table at the end.

After it (:mod:`src.report`, ``python -m src.report <sweep>``):

- :mod:`~src.sweeps.jobs`: reading the job folders of a sweep, what makes two jobs
  different settings, and the grid's jobs that never started;
- :mod:`~src.sweeps.tables`: the per-setting table (``report.csv``, ``report.md``);
- :mod:`~src.sweeps.curves`: the learning curves (``curves.png``).

Both: :mod:`~src.sweeps.warmup` names the jobs that never left the pool's random warm-up.
"""
