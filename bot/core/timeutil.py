"""Time parsing and formatting shared by sources, store and rendering, plus an injectable clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]
"""Returns the current time as aware UTC. Inject it; never call `datetime.now` deep inside."""


def system_clock() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO 8601 timestamp from a status source into aware UTC, or None if unusable.

    Accepts any offset (``-06:00``), a ``Z`` suffix and any fractional precision. A value with no
    offset is taken as UTC, which is what Statuspage means when it omits one.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # garbage, or an offset pushing past year 1 or 9999
        return None


def format_timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC to the second with a ``Z``: the contract's one timestamp format."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    # strftime's %Y does not zero-pad years below 1000 on every platform.
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S}Z"


def format_duration(delta: timedelta) -> str:
    """A short human duration: ``45 s``, ``12 min``, ``3 h 12 min``, ``2 d 4 h``."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
