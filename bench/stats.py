"""Percentiles, medians and spread, kept dependency-free and explicit about the method."""

from __future__ import annotations

import math
from statistics import median


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100): a value that was actually observed."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: list[float]) -> dict[str, float] | None:
    """Median of the repeats and their spread as (max - min) / median."""
    clean = [s for s in samples if s is not None]
    if not clean:
        return None
    mid = median(clean)
    spread = (max(clean) - min(clean)) / mid if mid else 0.0
    return {"median": mid, "min": min(clean), "max": max(clean), "spread": spread, "n": len(clean)}
