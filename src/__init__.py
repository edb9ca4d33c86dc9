"""Metric-learning zero-shot classification with hard negative mining."""
