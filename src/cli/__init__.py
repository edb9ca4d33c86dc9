"""The command line: how a job starts, checks its config, talks, and ends.

- :mod:`~src.cli.entry`: the entry of every Hydra job (fast start, one line per user mistake);
- :mod:`~src.cli.commands`: the console scripts ``zsl-train``, ``zsl-eval``, ``zsl-protocol``;
- :mod:`~src.cli.extras`: the extra a missing optional feature needs, in one line;
- :mod:`~src.cli.provenance`: the commit, dirty flag and version every result records;
- :mod:`~src.cli.loggers`: the W&B logger;
- :mod:`~src.cli.errors`: user errors in one line, bugs with their traceback;
- :mod:`~src.cli.config_checks`: every value checked before any data is read;
- :mod:`~src.cli.builders`: a config group's objects and the Trainer (shared by the checks and
  the jobs);
- :mod:`~src.cli.job`: the job's wrapper and the outputs every job writes;
- :mod:`~src.cli.console`: a calm console; :mod:`~src.cli.resolvers`: the config resolvers;
  :mod:`~src.cli.env`: ``.env``, the config folder and the warnings expected by design.
"""
