"""One reading of "wait this long" for every sender: ``Retry-After`` and its cousins.

A platform or a webhook receiver decides what these headers say; ``nan``, ``inf``, ``-5`` or a
date arrive in practice. Whatever comes in, what goes out is a finite number of seconds within
[0, `MAX_RETRY_AFTER`], or None (nothing usable: the worker's own backoff decides).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

MAX_RETRY_AFTER = 3600.0
"""An hour: a longer wait is more likely a bug (ours or theirs) than a real rate limit."""


def clamp_wait(seconds: float, *, cap: float = MAX_RETRY_AFTER) -> float | None:
    """``seconds`` within [0, cap]; None when it is not a finite number."""
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), cap)


def parse_retry_after(
    value: object, *, now: datetime | None = None, cap: float = MAX_RETRY_AFTER
) -> float | None:
    """Seconds to wait from a header or JSON value: a number of seconds or an HTTP-date.

    A date needs ``now`` (the caller's clock); one in the past means "now", i.e. 0.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return clamp_wait(float(value), cap=cap)
    text = str(value).strip()
    if not text or len(text) > 64:
        return None
    try:
        return clamp_wait(float(text), cap=cap)
    except ValueError:
        pass
    if now is None:
        return None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; a zone-less one is read as such
        when = when.replace(tzinfo=UTC)
    return clamp_wait((when - now).total_seconds(), cap=cap)
