"""A run's records: its folder and who owns it, its checkpoints, its history, and resuming it.

- :mod:`~src.runs.folder`: what a job folder holds, the rules for writing into one;
- :mod:`~src.runs.marker`: the running marker (which live process runs in a folder);
- :mod:`~src.runs.checkpoints`: atomic checkpoints that name their dataset and run;
- :mod:`~src.runs.weights`: whether a checkpoint's weights fit this run's model;
- :mod:`~src.runs.history`: ``csv/metrics.csv`` kept whole across resumes;
- :mod:`~src.runs.config_diff`: two configs compared key by key;
- :mod:`~src.runs.resume`: resuming a sweep's jobs and a run from a checkpoint.
"""
