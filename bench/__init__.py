"""Benchmarks of nemo-fabric, run with ``make bench`` (``python -m bench``).

Every figure is a ratio against a baseline measured in the same run, reported with
min/median/max over repeated samples; results go to ``bench/results/<section>.json``
and ``docs/benchmarks.md`` is rebuilt from all of them.
"""
