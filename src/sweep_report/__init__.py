"""The parts of the sweep report (:mod:`src.report`, ``python -m src.report <sweep>``).

- :mod:`~src.sweep_report.jobs`: reading the job folders of a sweep, and what makes two jobs
  different settings;
- :mod:`~src.sweep_report.tables`: the per-setting table (``report.csv``, ``report.md``);
- :mod:`~src.sweep_report.curves`: the learning curves (``curves.png``).
"""
