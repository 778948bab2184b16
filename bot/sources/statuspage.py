"""Parse Atlassian Statuspage v2 JSON (summary, status, components, incidents, maintenances)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping

from bot.core.status import (
    Component,
    ComponentStatus,
    Incident,
    IncidentUpdate,
    Indicator,
    Maintenance,
    PageInfo,
    Snapshot,
    SourceKind,
)
from bot.sources.errors import SourceFormatError
from bot.sources.json_values import (
    body_text,
    json_type_name,
    line_or_none,
    name_or_none,
    str_or_none,
    time_or_none,
)

KIND = SourceKind.STATUSPAGE

_KNOWN_KEYS = ("page", "status", "components", "incidents", "scheduled_maintenances")

# What a page may declare as its own indicator: "unknown" is ours alone, never the page's.
_PAGE_INDICATORS = {i.value: i for i in Indicator if i is not Indicator.UNKNOWN}
# Incident impacts that rank; "maintenance" belongs to scheduled maintenances, not incidents.
_IMPACT_INDICATORS = {
    value: i for value, i in _PAGE_INDICATORS.items() if i is not Indicator.MAINTENANCE
}
_COMPONENT_STATUSES = {s.value: s for s in ComponentStatus}


def parse_statuspage_bytes(body: bytes) -> Snapshot:
    """Decode a UTF-8 JSON body and parse it; SourceFormatError if it is not usable."""
    try:
        # utf-8-sig also accepts a leading BOM, which some proxies add.
        payload = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise SourceFormatError(f"invalid JSON: {exc.msg} (char {exc.pos})") from None
    except ValueError as exc:
        # e.g. an integer longer than Python's digit limit; its first clause is the reason.
        reason = str(exc).partition("\n")[0].partition(":")[0] or "unreadable value"
        raise SourceFormatError(f"invalid JSON: {reason}") from None
    except RecursionError:
        raise SourceFormatError("invalid JSON: nested too deeply") from None
    return parse_statuspage(payload)


def parse_statuspage(payload: object) -> Snapshot:
    """Parse a decoded Statuspage v2 payload into a Snapshot; SourceFormatError if unusable."""
    if not isinstance(payload, dict):
        raise SourceFormatError(f"top level is a JSON {json_type_name(payload)}, not an object")
    if not any(key in payload for key in _KNOWN_KEYS):
        raise SourceFormatError("no Statuspage keys (page, status, components, incidents, …)")
    _reject_foreign_shape(payload)
    page = payload.get("page")
    status = payload.get("status")
    lists = [payload.get(k) for k in ("components", "incidents", "scheduled_maintenances")]
    # Known keys holding only wrong types (`{"components": 5}`) tell us nothing at all.
    usable = isinstance(page, dict) or isinstance(status, dict)
    if not usable and not any(isinstance(value, list) for value in lists):
        raise SourceFormatError("Statuspage keys present but none has a usable value")

    incidents = tuple(_incidents(payload.get("incidents")))
    return Snapshot(
        kind=KIND,
        page=_page(page),
        indicator=_indicator(status, incidents),
        description=line_or_none(status.get("description")) if isinstance(status, dict) else None,
        components=tuple(_components(payload.get("components"))),
        incidents=incidents,
        maintenances=tuple(_maintenances(payload.get("scheduled_maintenances"))),
        lists_all_open_incidents=_lists_all_open_incidents(payload),
    )


def _reject_foreign_shape(payload: Mapping[str, object]) -> None:
    """SourceFormatError when a shared key holds what Statuspage never sends there.

    Other status APIs reuse the words: Heroku's current-status JSON has ``status`` as an array
    of systems beside an ``incidents`` array. Read leniently it is a calm page; it is not one.
    """
    for key in ("page", "status"):
        if key in payload and not isinstance(payload[key], dict):
            kind = json_type_name(payload[key])
            raise SourceFormatError(f"not a Statuspage payload: {key!r} is a JSON {kind}")


def _lists_all_open_incidents(payload: Mapping[str, object]) -> bool:
    """Whether an open incident missing from this payload has ended.

    incidents.json and incidents/unresolved.json list them all. incident.io's summary.json drops
    the ``incidents`` key entirely when nothing is open, so a summary (status + components)
    without it also means "none open"; status.json and components.json say nothing either way.
    """
    if isinstance(payload.get("incidents"), list):
        return True
    return isinstance(payload.get("status"), dict) and isinstance(payload.get("components"), list)


def _indicator(status: object, incidents: tuple[Incident, ...]) -> Indicator:
    """The page's own indicator, else the worst impact among open incidents, else none."""
    if isinstance(status, dict):
        declared = status.get("indicator")
        if isinstance(declared, str) and declared in _PAGE_INDICATORS:
            return _PAGE_INDICATORS[declared]
    worst = Indicator.NONE
    for incident in incidents:
        impact = _IMPACT_INDICATORS.get(incident.impact)
        if incident.is_open and impact is not None and impact.rank > worst.rank:
            worst = impact
    return worst


def _page(page: object) -> PageInfo:
    """Who publishes the page, when the payload says."""
    if not isinstance(page, dict):
        return PageInfo()
    return PageInfo(name=line_or_none(page.get("name")), url=line_or_none(page.get("url")))


def _components(raw: object) -> Iterator[Component]:
    """Leaf components in payload order, each named with its group's name."""
    entries = list(_entries(raw))
    group_names = {
        ident: name
        for entry in entries
        if entry.get("group") is True
        and (ident := str_or_none(entry.get("id")))
        and (name := name_or_none(entry.get("name")))
    }
    for entry in entries:
        ident, name = str_or_none(entry.get("id")), name_or_none(entry.get("name"))
        if ident is None or name is None or entry.get("group") is True:
            continue
        group_id = str_or_none(entry.get("group_id"))
        yield Component(
            id=ident,
            name=name,
            status=_component_status(entry.get("status")),
            # A group_id may point outside a partial list (incident.io); then we know no name.
            group=group_names.get(group_id) if group_id else None,
        )


def _component_status(value: object) -> ComponentStatus:
    """Map a status string to ComponentStatus; anything else is unknown."""
    if isinstance(value, str):
        return _COMPONENT_STATUSES.get(value, ComponentStatus.UNKNOWN)
    return ComponentStatus.UNKNOWN


def _incidents(raw: object) -> Iterator[Incident]:
    """Incidents in payload order; entries without id or name are skipped."""
    for entry in _entries(raw):
        ident, name = str_or_none(entry.get("id")), name_or_none(entry.get("name"))
        if ident is None or name is None:
            continue
        yield Incident(
            id=ident,
            name=name,
            status=_word(entry.get("status"), "unknown"),
            impact=_word(entry.get("impact"), "none"),
            started_at=time_or_none(entry.get("started_at"))
            or time_or_none(entry.get("created_at")),
            resolved_at=time_or_none(entry.get("resolved_at")),
            url=_url(entry),
            updates=tuple(_updates(entry.get("incident_updates"))),
            component_ids=tuple(_component_ids(entry.get("components"))),
        )


def _updates(raw: object) -> Iterator[IncidentUpdate]:
    """Updates as published (newest first); one with no usable time is skipped."""
    for entry in _entries(raw):
        created_at = time_or_none(entry.get("created_at")) or time_or_none(entry.get("display_at"))
        if created_at is None:
            continue
        yield IncidentUpdate(
            status=_word(entry.get("status"), "unknown"),
            body=body_text(entry.get("body")),
            created_at=created_at,
            id=str_or_none(entry.get("id")),
        )


def _component_ids(raw: object) -> Iterator[str]:
    """Ids of the components an incident names, as objects or bare id strings."""
    if not isinstance(raw, list):
        return
    for entry in raw:
        ident = str_or_none(entry.get("id")) if isinstance(entry, dict) else str_or_none(entry)
        if ident is not None:
            yield ident


def _maintenances(raw: object) -> Iterator[Maintenance]:
    """Scheduled maintenances in payload order; entries without id or name are skipped."""
    for entry in _entries(raw):
        ident, name = str_or_none(entry.get("id")), name_or_none(entry.get("name"))
        if ident is None or name is None:
            continue
        yield Maintenance(
            id=ident,
            name=name,
            status=_word(entry.get("status"), "unknown"),
            scheduled_for=time_or_none(entry.get("scheduled_for")),
            scheduled_until=time_or_none(entry.get("scheduled_until")),
            url=_url(entry),
            component_ids=tuple(_component_ids(entry.get("components"))),
        )


def _word(value: object, default: str) -> str:
    """A status or impact: one of a few words, so one shared copy of each is kept, not one per
    incident, update and maintenance of thousands of pages."""
    return sys.intern(line_or_none(value) or default)


def _entries(raw: object) -> Iterator[Mapping[str, object]]:
    """The object entries of a list; anything else (wrong container, strings, nulls) is dropped."""
    if isinstance(raw, list):
        yield from (entry for entry in raw if isinstance(entry, dict))


def _url(entry: Mapping[str, object]) -> str | None:
    """The incident's public link: the shortlink when given, else its url."""
    return line_or_none(entry.get("shortlink")) or line_or_none(entry.get("url"))
