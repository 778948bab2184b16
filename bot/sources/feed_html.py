"""Read what status feed entries say in their HTML: Statuspage update lists, status words, times.

Statuspage's `history.atom` / `history.rss` put every update of an incident into one HTML
blob, newest first, each as ``<p><small>Feb 3, 19:28 UTC</small><br><strong>Resolved</strong>
- body</p>``. The date has no year and a zone abbreviation instead of an offset; this module
turns those into aware UTC datetimes. Other feeds state only a status ("Status: Resolved") or
leave it to the words of the entry.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.status import IncidentStatus, IncidentUpdate, MaintenanceStatus
from bot.core.text import clean_source_text

MAINTENANCE_STATUSES = frozenset(MaintenanceStatus)

# [^<>] rather than [^>]: a lone "<" must not scan to the end of the text (quadratic on "<<<<").
_BLOCK_TAG = re.compile(r"<\s*/?\s*(?:br|p|div|li|ul|ol|tr|h[1-6]|hr)\b[^<>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^<>]*>")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n{3,}")
_SMALL_OPEN = re.compile(r"<small\b[^<>]*>", re.IGNORECASE)
_SMALL_CLOSE = re.compile(r"</small\s*>", re.IGNORECASE)
# The status word, then the " - " Statuspage puts before the body.
_STATUS_HEAD = re.compile(
    r"\s*(?:<br\s*/?>\s*)*<strong\b[^<>]*>(?P<status>[^<]{0,60})</strong>\s*[-\u2013\u2014]?\s*",
    re.IGNORECASE,
)
_STAMP = re.compile(
    r"(?P<mon>[A-Za-z]{3})[a-z]*\.?\s+(?P<day>\d{1,2}),?\s+(?:(?P<year>\d{4}),?\s+)?(?:-\s+)?"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*(?P<tz>[A-Za-z]{1,5})?\b"
)
_CLOCK = re.compile(
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*(?P<ampm>[AaPp]\.?[Mm]\.?)?\s*(?P<tz>[A-Za-z]{1,5})?\b"
)
_WINDOW = re.compile(
    r"(?:THIS IS A SCHEDULED EVENT|Scheduled for)\s+(?P<start>.{1,60}?)\s+(?:-|until|to)\s+"
    r"(?P<end>[^\n]{1,60})",
    re.IGNORECASE,
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}

# Statuspage prints the page's zone as an abbreviation. Old pages printed "PST" all year (the
# 2013 Parse feed says "Oct 28, 14:48 PST" where its pubDate says 14:48 -0700), so the
# abbreviation names a zone and the date decides whether daylight time applies.
_ZONES = {
    "PST": ("America/Los_Angeles", -8, False),
    "PDT": ("America/Los_Angeles", -7, True),
    "MST": ("America/Denver", -7, False),
    "MDT": ("America/Denver", -6, True),
    "CST": ("America/Chicago", -6, False),
    "CDT": ("America/Chicago", -5, True),
    "EST": ("America/New_York", -5, False),
    "EDT": ("America/New_York", -4, True),
    "BST": ("Europe/London", 1, True),
    "CET": ("Europe/Paris", 1, False),
    "CEST": ("Europe/Paris", 2, True),
    "JST": ("Asia/Tokyo", 9, False),
}


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: block tags become line breaks, entities are decoded.

    Control characters go after decoding, since ``&#27;`` is an ESC too.
    """
    text = _ANY_TAG.sub("", _BLOCK_TAG.sub("\n", fragment))
    text = clean_source_text(html.unescape(text).replace("\xa0", " "))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def statuspage_updates(fragment: str, reference: datetime | None) -> list[IncidentUpdate]:
    """The updates of a Statuspage history entry, as published (newest first).

    ``reference`` is the entry's own date; the year of each update comes from it.
    """
    updates = []
    # Splitting on <small> keeps this linear however the markup is mangled.
    for chunk in _SMALL_OPEN.split(fragment)[1:]:
        closing = _SMALL_CLOSE.search(chunk)
        if closing is None:
            continue
        head = _STATUS_HEAD.match(chunk, closing.end())
        if head is None:
            continue
        created_at = parse_stamp(html_to_text(chunk[: closing.start()]), reference)
        if created_at is None:
            continue
        word = html_to_text(head["status"]).lower().strip(" .:")
        updates.append(
            IncidentUpdate(
                status=word.replace(" ", "_") or "update",
                body=html_to_text(chunk[head.end() :]),
                created_at=created_at,
            )
        )
    return updates


def scheduled_window(
    text: str, reference: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """The (start, end) of "THIS IS A SCHEDULED EVENT …" or "Scheduled for … until …" text."""
    found = _WINDOW.search(text)
    if found is None:
        return None, None
    end_text = found["end"]
    end_stamp, end_clock = _STAMP.match(end_text), _CLOCK.match(end_text)
    # "Apr 7, 13:00 - 17:00 UTC" names the zone once, at the end, and the end's date not at all.
    end_match = end_stamp or end_clock
    zone = end_match["tz"] if end_match is not None else None
    start = parse_stamp(found["start"], reference, default_zone=zone)
    if end_stamp is not None:
        return start, parse_stamp(end_text, reference)
    if start is None or end_clock is None:
        return start, None
    local = start.astimezone(_zone(zone))
    end = _at(local.year, local.month, local.day, end_clock, zone)
    if end is not None and end < start:
        end += timedelta(days=1)
    return start, end


def parse_stamp(
    text: str, reference: datetime | None, *, default_zone: str | None = None
) -> datetime | None:
    """Parse "Feb 3, 19:28 UTC" (optionally with a year, seconds, AM/PM) into aware UTC.

    Without a year, the year that puts the date nearest ``reference`` wins: an update posted on
    Dec 31 of an entry dated Jan 1 belongs to the year before, a postmortem posted days after
    the entry's date to the same year. Without a year or a reference there is no date.
    """
    found = _STAMP.search(text)
    if found is None or found["mon"].lower() not in _MONTHS:
        return None
    month, day = _MONTHS[found["mon"].lower()], int(found["day"])
    zone = found["tz"] or default_zone
    if found["year"]:
        return _at(int(found["year"]), month, day, found, zone)
    if reference is None:
        return None
    candidates = [
        stamp
        for year in (reference.year - 1, reference.year, reference.year + 1)
        if (stamp := _at(year, month, day, found, zone)) is not None
    ]
    return min(candidates, key=lambda stamp: abs(stamp - reference), default=None)


def _at(year: int, month: int, day: int, found: re.Match[str], zone: str | None) -> datetime | None:
    """The UTC instant of a local date and a matched clock time in the named zone, if valid."""
    hour, minute = int(found["hour"]), int(found["minute"])
    second = int(found.groupdict().get("second") or 0)
    ampm = (found["ampm"] or "").lower().replace(".", "")
    if ampm and not 1 <= hour <= 12:
        return None
    if ampm:
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    known = _ZONES.get((zone or "").upper())
    # A standard-time abbreviation means the later of the two repeated autumn hours.
    fold = 1 if known is not None and not known[2] else 0
    try:
        local = datetime(year, month, day, hour, minute, second, tzinfo=_zone(zone), fold=fold)
        stamp = local.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # The contract writes four-digit years only.
    return stamp if 1000 <= stamp.year <= 9999 else None


def _zone(abbreviation: str | None) -> tzinfo:
    """The zone an abbreviation names; anything unknown (UTC, GMT, Z, typos) is UTC."""
    known = _ZONES.get((abbreviation or "").upper())
    if known is None:
        return UTC
    name, offset, _daylight = known
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # No tz database on this host: the abbreviation's literal offset is the next best thing.
        return timezone(timedelta(hours=offset))


# "Status: Resolved" (incident.io), "Status: RESOLVED" / "Status: ACTIVE" (xAI).
_STATUS_LINE = re.compile(r"\bstatus:[^\S\n]*(?P<word>[A-Za-z][A-Za-z _-]{0,40})", re.IGNORECASE)
_STATUS_WORDS: dict[str, str] = {
    "investigating": IncidentStatus.INVESTIGATING,
    "identified": IncidentStatus.IDENTIFIED,
    "monitoring": IncidentStatus.MONITORING,
    "resolved": IncidentStatus.RESOLVED,
    "operational": IncidentStatus.RESOLVED,
    "postmortem": IncidentStatus.POSTMORTEM,
    "active": IncidentStatus.INVESTIGATING,
    "ongoing": IncidentStatus.INVESTIGATING,
    "scheduled": MaintenanceStatus.SCHEDULED,
    "in progress": MaintenanceStatus.IN_PROGRESS,
    "verifying": MaintenanceStatus.VERIFYING,
    "completed": MaintenanceStatus.COMPLETED,
    "complete": MaintenanceStatus.COMPLETED,
}
# First match wins, so the words of a later stage come before those of an earlier one.
_INCIDENT_WORDS = (
    (re.compile(r"\b(?:resolved|completed|operational)\b", re.IGNORECASE), IncidentStatus.RESOLVED),
    (re.compile(r"\bmonitoring\b", re.IGNORECASE), IncidentStatus.MONITORING),
    (re.compile(r"\bidentified\b", re.IGNORECASE), IncidentStatus.IDENTIFIED),
    (re.compile(r"\binvestigating\b", re.IGNORECASE), IncidentStatus.INVESTIGATING),
)
_MAINTENANCE_WORDS = (
    (
        re.compile(r"\b(?:completed|resolved|finished)\b", re.IGNORECASE),
        MaintenanceStatus.COMPLETED,
    ),
    (re.compile(r"\bverifying\b", re.IGNORECASE), MaintenanceStatus.VERIFYING),
    (
        re.compile(r"\b(?:in progress|underway|started)\b", re.IGNORECASE),
        MaintenanceStatus.IN_PROGRESS,
    ),
    (re.compile(r"\bscheduled\b", re.IGNORECASE), MaintenanceStatus.SCHEDULED),
)
_IMPACT_WORDS = (
    (re.compile(r"\b(?:major|full) outage\b|\bseverity: outage\b", re.IGNORECASE), "major"),
    (re.compile(r"\bpartial outage\b|\bdegraded performance\b", re.IGNORECASE), "minor"),
    (re.compile(r"\bseverity: degraded\b", re.IGNORECASE), "minor"),
)
_RFC822 = re.compile(
    r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}(?::\d{2})? "
    r"(?:GMT|UTC|[+-]\d{4})"
)


def stated_status(text: str) -> tuple[str | None, str]:
    """The status a "Status: …" line states (None if none or unknown), and the text after it."""
    found = _STATUS_LINE.search(text)
    if found is None:
        return None, text
    words = found["word"].lower().replace("_", " ").replace("-", " ").split()
    if words[:1] == ["maintenance"]:
        words = words[1:]
    # "Status: Resolved - all good" states "resolved"; the longest known phrase wins.
    phrases = (" ".join(words[:n]) for n in range(len(words), 0, -1))
    status = next((_STATUS_WORDS[p] for p in phrases if p in _STATUS_WORDS), None)
    # Only a leading status line is a header; one further down is part of the message.
    rest = text[found.end() :].strip() if found.start() == 0 and status else text
    return status, rest


def guessed_status(text: str, *, maintenance: bool) -> str:
    """The status an entry's words suggest; investigating (or scheduled) when they say none."""
    words = _MAINTENANCE_WORDS if maintenance else _INCIDENT_WORDS
    found = next((status for pattern, status in words if pattern.search(text)), None)
    return found or (MaintenanceStatus.SCHEDULED if maintenance else IncidentStatus.INVESTIGATING)


def stated_impact(text: str) -> str:
    """The impact the entry's words state ("major outage", "Severity: degraded"), else unknown."""
    return next((impact for pattern, impact in _IMPACT_WORDS if pattern.search(text)), "unknown")


def latest_stated_time(text: str) -> datetime | None:
    """The latest RFC 822 time written in the text (xAI lists its updates' times that way)."""
    latest = None
    for found in _RFC822.finditer(text):
        try:
            stamp = parsedate_to_datetime(found.group())
            stamp = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        except (ValueError, TypeError, OverflowError):
            continue
        if 1000 <= stamp.year <= 9999 and (latest is None or stamp > latest):
            latest = stamp
    return latest
