"""Repeated, interleaved rate measurements with min/median/max."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable, Dict, List


@dataclass
class Rate:
    """Operations per second over repeated samples."""

    samples: List[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    def as_dict(self) -> Dict[str, float]:
        return {"min": self.minimum, "median": self.median, "max": self.maximum,
                "samples": self.samples}


def calibrate(operation: Callable[[], object], target_seconds: float) -> int:
    """Iterations of ``operation`` that take about ``target_seconds``."""
    count = 1
    while True:
        start = time.perf_counter()
        for _ in range(count):
            operation()
        elapsed = time.perf_counter() - start
        if elapsed >= target_seconds / 4:
            return max(1, int(count * target_seconds / elapsed))
        count *= 4


def compare_rates(contenders: Dict[str, Callable[[], object]], repeats: int = 7,
                  sample_seconds: float = 0.3) -> Dict[str, Rate]:
    """Rates of several operations, sampled in turn so that machine noise hits all alike."""
    counts = {name: calibrate(op, sample_seconds) for name, op in contenders.items()}
    samples: Dict[str, List[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, operation in contenders.items():
            count = counts[name]
            start = time.perf_counter()
            for _ in range(count):
                operation()
            samples[name].append(count / (time.perf_counter() - start))
    return {name: Rate(values) for name, values in samples.items()}
