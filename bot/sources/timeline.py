"""Real incident timelines (copied status page text) replayed as Statuspage payloads.

Used by tests and the offline demo: `parse_timeline` reads a page copied from a status site, and
`summary_at` rebuilds the summary.json that page would have served at any moment of the incident.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bot.core.status import IncidentStatus
from bot.core.timeutil import format_timestamp

STATUS_WORDS = ("Postmortem", "Resolved", "Monitoring", "Identified", "Update", "Investigating")
_ZONES = {"UTC": 0, "GMT": 0, "PST": -8, "PDT": -7, "EST": -5, "EDT": -4, "CST": -6, "CDT": -5}
_POSTED = re.compile(r"^Posted (\w{3} \d{1,2}, \d{4}) - (\d{1,2}:\d{2}) ([A-Z]{3})$")
_HEADING = re.compile(r"^(?:## )?(" + "|".join(STATUS_WORDS) + r")$")
_INCIDENT_URL = re.compile(r"https?://(?P<host>[^/\s]+)/incidents/(?P<id>[a-z0-9]+)")


@dataclass(frozen=True, slots=True)
class TimelineUpdate:
    """One official update of a real incident."""

    status: str
    body: str
    posted_at: datetime


@dataclass(frozen=True, slots=True)
class Timeline:
    """A real incident as its status page told it; updates oldest first."""

    host: str
    incident_id: str
    title: str
    components: tuple[str, ...]
    updates: tuple[TimelineUpdate, ...]

    @property
    def started_at(self) -> datetime:
        """When the first update was posted."""
        return self.updates[0].posted_at


def parse_timeline(text: str) -> Timeline:
    """Read a copied incident page; ValueError if it has no dated updates."""
    lines = [line.rstrip() for line in text.splitlines()]
    match = next((m for line in lines if (m := _INCIDENT_URL.search(line))), None)
    if match is None:
        raise ValueError("no incident URL in the timeline header")
    header = 0
    while header < len(lines) and lines[header].startswith("# "):
        header += 1  # the copier's note on where the page came from
    content = _without_front_matter(lines[header:])
    titles = [line.removeprefix("# ") for line in content if line.startswith("# ")]
    title = titles[0] if titles else next((line for line in content if line.strip()), "")
    content = [line for line in content if not line.startswith("# ")]
    updates: list[TimelineUpdate] = []
    status: str | None = None
    body: list[str] = []
    components: tuple[str, ...] = ()
    for line in content:
        if heading := _HEADING.match(line.strip()):
            status, body = heading.group(1).lower(), []
        elif posted := _POSTED.match(line.strip()):
            if status is not None:
                updates.append(
                    TimelineUpdate(status, " ".join(" ".join(body).split()), _when(posted))
                )
            status, body = None, []
        elif line.startswith("This incident affected:"):
            components = _affected(line)
        elif status is not None:
            body.append(line)
    if not updates:
        raise ValueError("no dated updates in the timeline")
    updates.sort(key=lambda u: u.posted_at)
    updates = _real_statuses(updates)
    return Timeline(
        host=match.group("host"),
        incident_id=match.group("id"),
        title=title.strip(),
        components=components,
        updates=tuple(updates),
    )


def incidents_at(timeline: Timeline, at: datetime, *, impact: str = "major") -> dict[str, Any]:
    """The incidents.json the page would have served at ``at`` (the incident, resolved or not)."""
    return {"page": _page(timeline), "incidents": _incidents(timeline, at, impact)}


def summary_at(timeline: Timeline, at: datetime, *, impact: str = "major") -> dict[str, Any]:
    """The summary.json the page would have served at ``at`` (components, incident, indicator)."""
    incidents = _incidents(timeline, at, impact)
    is_open = bool(incidents) and incidents[0]["resolved_at"] is None
    component_status = "major_outage" if is_open else "operational"
    return {
        "page": _page(timeline),
        "status": {
            "indicator": impact if is_open else "none",
            "description": "Major outage" if is_open else "All Systems Operational",
        },
        "components": [
            {
                "id": f"comp-{index}",
                "name": name,
                "status": component_status,
                "group": False,
                "group_id": None,
            }
            for index, name in enumerate(timeline.components)
        ],
        # A summary lists only unresolved incidents; a resolved one lives on in incidents.json.
        "incidents": incidents if is_open else [],
        "scheduled_maintenances": [],
    }


def _page(timeline: Timeline) -> dict[str, str]:
    return {"id": timeline.host, "name": timeline.host, "url": f"https://{timeline.host}"}


def _incidents(timeline: Timeline, at: datetime, impact: str) -> list[dict[str, Any]]:
    published = [u for u in timeline.updates if u.posted_at <= at]
    if not published:
        return []
    resolved = next((u.posted_at for u in published if u.status == IncidentStatus.RESOLVED), None)
    return [
        {
            "id": timeline.incident_id,
            "name": timeline.title,
            "status": published[-1].status,
            "impact": impact,
            "created_at": format_timestamp(timeline.started_at),
            "started_at": format_timestamp(timeline.started_at),
            "updated_at": format_timestamp(published[-1].posted_at),
            "resolved_at": format_timestamp(resolved),
            "shortlink": f"https://{timeline.host}/incidents/{timeline.incident_id}",
            "incident_updates": [
                {
                    "id": f"{timeline.incident_id}-{index}",
                    "status": update.status,
                    "body": update.body,
                    "created_at": format_timestamp(update.posted_at),
                }
                for index, update in reversed(list(enumerate(published)))
            ],
        }
    ]


def _real_statuses(updates: list[TimelineUpdate]) -> list[TimelineUpdate]:
    # Pages label an update that keeps the status "Update"; the API repeats the status instead.
    fixed: list[TimelineUpdate] = []
    current: str = IncidentStatus.INVESTIGATING
    for update in updates:
        if update.status == "update":
            update = TimelineUpdate(current, update.body, update.posted_at)
        current = update.status
        fixed.append(update)
    return fixed


def _without_front_matter(lines: list[str]) -> list[str]:
    if "---" in lines:
        first = lines.index("---")
        if "---" in lines[first + 1 :]:
            second = lines.index("---", first + 1)
            return lines[:first] + lines[second + 1 :]
    return lines


def _when(posted: re.Match[str]) -> datetime:
    day, clock, zone = posted.groups()
    local = datetime.strptime(f"{day} {clock}", "%b %d, %Y %H:%M")
    offset = timezone(timedelta(hours=_ZONES.get(zone, 0)))
    return local.replace(tzinfo=offset).astimezone(UTC)


def _affected(line: str) -> tuple[str, ...]:
    names = line.removeprefix("This incident affected:").strip().rstrip(".")
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+", names)
    return tuple(p.strip() for p in parts if p.strip())
