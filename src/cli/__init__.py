"""The command line: how a job starts, checks its config, talks, and ends. Only the entry
points (``src.train``, ``src.eval``, ``src.protocol``, ``src.features``) import from here; what
every room shares lives in :mod:`src.core`.

- :mod:`~src.cli.entry`: the entry of every Hydra job (fast start, one line per user mistake);
- :mod:`~src.cli.commands`: the console scripts ``zsl-train``, ``zsl-eval``, ``zsl-protocol``;
- :mod:`~src.cli.loggers`: the W&B logger;
- :mod:`~src.cli.config_checks`: every value of a job checked before any data is read;
- :mod:`~src.cli.builders`: a config group's objects and the Trainer (shared by the checks and
  the jobs);
- :mod:`~src.cli.job`: the job's wrapper and the outputs every job writes;
- :mod:`~src.cli.console`: a calm console.
"""
