"""Benchmarks: ``make bench`` (``python -m bench``) prints the dispatcher's figures and its baselines'."""
