"""Parse RSS 2.0 and Atom status feeds (Statuspage history, incident.io, Better Stack, xAI, …).

Statuspage's `history.atom` / `history.rss` carry every update of an incident in the entry's
HTML (see `feed_html`); other feeds carry one entry per incident with only its latest state,
which is guessed from the words the entry uses.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import feedparser

from bot.core.status import (
    CLOSED_INCIDENT_STATUSES,
    Incident,
    IncidentStatus,
    IncidentUpdate,
    Indicator,
    Maintenance,
    MaintenanceStatus,
    PageInfo,
    Snapshot,
    SourceKind,
)
from bot.core.text import clean_source_line
from bot.sources.errors import SourceFormatError
from bot.sources.feed_html import (
    MAINTENANCE_STATUSES,
    guessed_status,
    html_to_text,
    latest_stated_time,
    scheduled_window,
    stated_impact,
    stated_status,
    statuspage_updates,
)

KIND = SourceKind.FEED

_INCIDENT_STATUSES = frozenset(
    {
        IncidentStatus.INVESTIGATING,
        IncidentStatus.IDENTIFIED,
        IncidentStatus.MONITORING,
        *CLOSED_INCIDENT_STATUSES,
    }
)
_ACTIVE_MAINTENANCE = frozenset({MaintenanceStatus.IN_PROGRESS, MaintenanceStatus.VERIFYING})
_HTML_START = re.compile(rb"\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Entry:
    """The fields of one feed entry this parser reads, typed (feedparser's are not)."""

    id: str | None
    title: str | None
    link: str | None
    html: str
    summary: str
    published: datetime | None
    updated: datetime | None


def parse_feed_bytes(body: bytes, *, options: Mapping[str, object] | None = None) -> Snapshot:
    """Parse an RSS or Atom body into a Snapshot; SourceFormatError if it is not a feed.

    ``options["match"]`` keeps only entries whose title or summary contains it (any case), for
    feeds that cover many products.
    """
    wanted = _match_option(options)
    if not body.strip():
        raise SourceFormatError("empty body")
    parsed = _parse(body)
    entries = [_entry(raw) for raw in _dicts(parsed.get("entries"))]
    if not _str(parsed.get("version")):
        if _HTML_START.match(body):
            raise SourceFormatError("not an RSS or Atom feed: an HTML page")
        raise SourceFormatError("not an RSS or Atom feed")
    problem = parsed.get("bozo_exception")
    if not entries and problem is not None and "SAX" in type(problem).__name__:
        # A cut-off feed would otherwise read as a calm page with nothing to report.
        reason = str(problem).splitlines()[0][:100] if str(problem) else type(problem).__name__
        raise SourceFormatError(f"feed is not well-formed XML and has no entries ({reason})")

    incidents: list[Incident] = []
    maintenances: list[Maintenance] = []
    for entry in entries:
        if wanted is not None and not _matches(entry, wanted):
            continue
        item = _item(entry)
        if isinstance(item, Incident):
            incidents.append(item)
        elif isinstance(item, Maintenance):
            maintenances.append(item)
    feed = next(_dicts([parsed.get("feed")]), {})
    return Snapshot(
        kind=KIND,
        page=PageInfo(name=_line(_str(feed.get("title"))), url=_str(feed.get("link"))),
        indicator=_indicator(incidents, maintenances),
        incidents=tuple(incidents),
        maintenances=tuple(maintenances),
    )


def _parse(body: bytes) -> dict[str, object]:
    """feedparser's result as a plain dict; feedparser reports trouble in ``bozo``, not raises."""
    try:
        # A BytesIO, never bare bytes: feedparser opens a bytes value that names a local file.
        result = feedparser.parse(io.BytesIO(body), resolve_relative_uris=False)
    except Exception as exc:
        # It is meant never to raise; if it does on some input, that input is not a usable feed.
        raise SourceFormatError(f"feed parser failed: {type(exc).__name__}") from None
    return dict(result) if isinstance(result, dict) else {}


def _item(entry: _Entry) -> Incident | Maintenance | None:
    """An entry as an incident or a maintenance; None without a title."""
    name = entry.title
    if name is None:
        return None
    ident = entry.id or entry.link or _hashed_id(entry)
    reference = entry.published or entry.updated
    text = html_to_text(entry.html)
    updates = statuspage_updates(entry.html, reference)
    started_at: datetime | None
    if updates:
        statuses = {u.status for u in updates}
        maintenance = bool(statuses & MAINTENANCE_STATUSES) or (
            not statuses & _INCIDENT_STATUSES and "maintenance" in name.lower()
        )
        # Stable: updates posted in the same minute keep the feed's newest-first order.
        updates.sort(key=lambda u: u.created_at, reverse=True)
        status, started_at = updates[0].status, updates[-1].created_at
    else:
        status, maintenance, update = _single_update(entry)
        updates = [update] if update is not None else []
        started_at = entry.published or (update.created_at if update else None)
    if maintenance:
        start, end = scheduled_window(text, reference)
        return Maintenance(
            id=ident,
            name=name,
            status=_as_maintenance_status(status),
            scheduled_for=start,
            scheduled_until=end,
            url=entry.link,
        )
    return Incident(
        id=ident,
        name=name,
        status=status,
        impact=stated_impact(f"{name}\n{text}"),
        started_at=started_at,
        resolved_at=_resolved_at(status, updates),
        url=entry.link,
        updates=tuple(updates),
    )


def _single_update(entry: _Entry) -> tuple[str, bool, IncidentUpdate | None]:
    """(status, is maintenance, the one update) of an entry that shows only its latest state."""
    text = html_to_text(entry.summary or entry.html)
    title = entry.title or ""
    status, body = stated_status(text)
    if status is not None:
        maintenance = status in MAINTENANCE_STATUSES
    else:
        maintenance = "maintenance" in title.lower()
        status = guessed_status(f"{title}\n{text}", maintenance=maintenance)
    # The entry's date is often its first post; a later time it states is its latest update.
    stated = None if maintenance else latest_stated_time(text)
    created_at = max(filter(None, (entry.updated, entry.published, stated)), default=None)
    if created_at is None:
        return status, maintenance, None
    return status, maintenance, IncidentUpdate(status=status, body=body, created_at=created_at)


def _resolved_at(status: str, updates: list[IncidentUpdate]) -> datetime | None:
    """When a closed incident was resolved: its newest "resolved" update, not a later postmortem."""
    if status not in CLOSED_INCIDENT_STATUSES or not updates:
        return None
    resolved = (
        u.created_at
        for u in updates
        if u.status in {IncidentStatus.RESOLVED, MaintenanceStatus.COMPLETED}
    )
    return next(resolved, updates[0].created_at)


def _as_maintenance_status(status: str) -> str:
    """A maintenance's status in Statuspage's maintenance vocabulary."""
    if status in MAINTENANCE_STATUSES:
        return status
    return (
        MaintenanceStatus.COMPLETED
        if status in CLOSED_INCIDENT_STATUSES
        else MaintenanceStatus.SCHEDULED
    )


def _indicator(incidents: list[Incident], maintenances: list[Maintenance]) -> Indicator:
    """Minor while an incident is open (a feed says no more), maintenance while one runs."""
    if any(incident.is_open for incident in incidents):
        return Indicator.MINOR
    if any(m.status in _ACTIVE_MAINTENANCE for m in maintenances):
        return Indicator.MAINTENANCE
    return Indicator.NONE


def _matches(entry: _Entry, wanted: str) -> bool:
    """Whether the entry's title or summary mentions the wanted text, in any case."""
    haystack = f"{entry.title or ''}\n{html_to_text(entry.summary or entry.html)}"
    return wanted in haystack.casefold()


def _match_option(options: Mapping[str, object] | None) -> str | None:
    """The ``match`` option, casefolded; a misconfigured one is an error, not "match all"."""
    value = (options or {}).get("match")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise TypeError("feed option 'match' must be a non-empty string")
    return value.strip().casefold()


def _entry(raw: Mapping[str, object]) -> _Entry:
    """Read the fields this parser uses from one feedparser entry."""
    content = next((v for c in _dicts(raw.get("content")) if (v := _str(c.get("value")))), None)
    summary = _str(raw.get("summary")) or ""
    title = _str(raw.get("title"))
    title_type = next(_dicts([raw.get("title_detail")]), {}).get("type")
    if title is not None and isinstance(title_type, str) and "html" in title_type:
        title = html_to_text(title)
    return _Entry(
        id=_line(_str(raw.get("id"))),
        title=_line(title),
        link=_line(_str(raw.get("link"))),
        html=content or summary,
        summary=summary,
        published=_time(raw.get("published_parsed")),
        updated=_time(raw.get("updated_parsed")),
    )


def _dicts(raw: object) -> Iterator[dict[str, object]]:
    """The mappings in a list, copied as plain dicts.

    feedparser's dicts warn (an error under pytest) when ``updated`` is read on an RSS entry;
    plain copies read only what is really there.
    """
    if isinstance(raw, list):
        yield from (dict(item) for item in raw if isinstance(item, dict))


def _hashed_id(entry: _Entry) -> str:
    """A stable id for an entry that has neither id nor link."""
    published = entry.published.isoformat() if entry.published else ""
    digest = hashlib.sha256(f"{entry.title}\n{published}".encode()).hexdigest()
    return f"feed-{digest[:16]}"


def _time(value: object) -> datetime | None:
    """A feedparser UTC time tuple as aware UTC, or None if absent or out of range."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        # A leap second (60) is not a datetime; the second before it is close enough.
        stamp = datetime(*value[:5], min(value.tm_sec, 59), tzinfo=UTC)
    except (ValueError, OverflowError, TypeError):
        return None
    return stamp if stamp.year >= 1000 else None


def _line(value: str | None) -> str | None:
    """A value on one printable line with single spaces, or None if that leaves nothing."""
    if value is None:
        return None
    return " ".join(clean_source_line(value).split()) or None


def _str(value: object) -> str | None:
    """A non-empty string, or None."""
    return value if isinstance(value, str) and value.strip() else None
