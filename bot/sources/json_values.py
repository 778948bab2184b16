"""Reading values out of decoded JSON from status sources, where any type may turn up."""

from __future__ import annotations

from datetime import datetime

from bot.core.timeutil import parse_timestamp


def str_or_none(value: object) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def time_or_none(value: object) -> datetime | None:
    """A timestamp a status page can mean: parseable, and not before the year 1000."""
    parsed = parse_timestamp(value)
    return parsed if parsed is not None and parsed.year >= 1000 else None


def json_type_name(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__
