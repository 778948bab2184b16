"""Poisson tail probabilities for the crowd detector (pure): how surprising a count is."""

from __future__ import annotations

import math

_LN10 = math.log(10.0)


def poisson_log_sf(n: int, mu: float) -> float:
    """ln P(X >= n) for X ~ Poisson(mu), accurate far into the tail (no underflow)."""
    if n <= 0:
        return 0.0
    if mu <= 0:
        return -math.inf
    if n > mu:  # upper tail: p(n) * (1 + mu/(n+1) + mu^2/((n+1)(n+2)) + ...)
        log_first = n * math.log(mu) - mu - math.lgamma(n + 1)
        total = term = 1.0
        k = n
        while term > 1e-17 * total and k < n + 1_000_000:
            k += 1
            term *= mu / k
            total += term
        return log_first + math.log(total)
    # otherwise 1 - P(X <= n-1), that sum taken downwards from its largest term
    log_last = (n - 1) * math.log(mu) - mu - math.lgamma(n)
    total = term = 1.0
    for k in range(n - 1, 0, -1):
        term *= k / mu
        total += term
        if term < 1e-17 * total:
            break
    return math.log1p(-min(math.exp(log_last + math.log(total)), 1.0 - 1e-16))


def surprise_of(count: int, expected: float, tests: int = 1) -> float:
    """-log10 of the Poisson upper tail, Bonferroni-corrected for `tests` looks (never < 0)."""
    return max(0.0, -poisson_log_sf(count, expected) / _LN10 - math.log10(max(tests, 1)))
