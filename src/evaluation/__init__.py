"""What the entry points do around a final evaluation (the metrics themselves: :mod:`src.metrics`).

- :mod:`~src.evaluation.gamma`: the test-time calibration γ, chosen on the validation split;
- :mod:`~src.evaluation.reports`: ``per_class.csv`` and ``confusion.png`` beside ``metrics.json``.
"""
