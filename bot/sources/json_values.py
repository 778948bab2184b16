"""Reading values out of decoded JSON from status sources, where any type may turn up."""

from __future__ import annotations

from datetime import datetime

from bot.core.text import clean_source_line, clean_source_text
from bot.core.timeutil import parse_timestamp

UNNAMED = "(no name)"
"""The name of an entry whose name was nothing but control characters: the entry still counts."""


def str_or_none(value: object) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value else None


def line_or_none(value: object) -> str | None:
    """A non-empty string cleaned to one printable line (see clean_source_line), or None."""
    text = str_or_none(value)
    return clean_source_line(text) or None if text is not None else None


def name_or_none(value: object) -> str | None:
    """An entry's name as one printable line; None only when it has no name at all."""
    text = str_or_none(value)
    if text is None:
        return None
    cleaned = clean_source_line(text)
    return cleaned if cleaned.strip() else UNNAMED


def body_text(value: object) -> str:
    """An update body with its paragraphs, without control characters; "" when absent."""
    text = str_or_none(value)
    return clean_source_text(text) if text is not None else ""


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
