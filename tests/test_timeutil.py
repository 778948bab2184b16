"""Timestamp parsing and the contract's one output format."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.core.timeutil import format_duration, format_timestamp, parse_timestamp


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2020-06-16T13:27:41.123-07:00", "2020-06-16T20:27:41Z"),
        ("2019-02-21T10:00:00Z", "2019-02-21T10:00:00Z"),
        ("2019-02-21T10:00:00", "2019-02-21T10:00:00Z"),  # no offset: Statuspage means UTC
        ("2024-09-16T08:59:00.000000+00:00", "2024-09-16T08:59:00Z"),
    ],
)
def test_parse_then_format(text: str, expected: str) -> None:
    assert format_timestamp(parse_timestamp(text)) == expected


@pytest.mark.parametrize(
    "junk",
    [None, "", "  ", "yesterday", 12, "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"],
)
def test_unusable_timestamps_are_none(junk: object) -> None:
    assert parse_timestamp(junk) is None


def test_format_pads_small_years_and_converts_offsets() -> None:
    assert format_timestamp(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00Z"
    pdt = timezone(timedelta(hours=-7))
    assert format_timestamp(datetime(2024, 9, 16, 9, 15, tzinfo=pdt)) == "2024-09-16T16:15:00Z"
    assert format_timestamp(None) is None


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(seconds=5), "5 s"),
        (timedelta(minutes=12), "12 min"),
        (timedelta(hours=3, minutes=12), "3 h 12 min"),
        (timedelta(hours=5), "5 h"),
        (timedelta(days=2, hours=4), "2 d 4 h"),
        (timedelta(seconds=-3), "0 s"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
