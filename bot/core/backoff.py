"""Exponential backoff with jitter (pure)."""

from __future__ import annotations


def backoff_delay(failures: int, *, base: float, cap: float, jitter: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures.

    Doubles from ``base`` up to ``cap``; ``jitter`` (0..1, from a random source) spreads the
    result over ±20 % so many sources failing together do not retry in lockstep.
    """
    if failures <= 0:
        return 0.0
    raw = min(cap, base * float(2 ** min(failures - 1, 32)))
    return raw * (0.8 + 0.4 * min(max(jitter, 0.0), 1.0))
