"""The shared core that every room of ``src`` uses and that imports none of them:

- :mod:`~src.core.errors`: user errors in one line, bugs with their traceback;
- :mod:`~src.core.checks`: a config value against a type hint, in words; the seed range;
- :mod:`~src.core.env`: ``.env``, the config folder and the warnings expected by design;
- :mod:`~src.core.extras`: the extra a missing optional feature needs, in one line;
- :mod:`~src.core.provenance`: the commit, dirty flag and version every result records;
- :mod:`~src.core.rank`: which process writes a job's files (Lightning's rank).
"""
