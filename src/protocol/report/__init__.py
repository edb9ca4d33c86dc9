"""The protocol's results as files: the rows and their summaries (:mod:`~.results`),
``protocol.csv``, ``protocol.md`` and ``protocol.png`` (:mod:`~.write`), a protocol multirun's
leaderboard
(:mod:`~.leaderboard`) and the intervals recomputed from the kept predictions
(:mod:`~.recompute`, ``python -m src.protocol.report.recompute <run>``)."""
