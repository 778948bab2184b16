"""Parse Google Cloud's ``incidents.json`` (status.cloud.google.com) into a Snapshot.

The payload is a JSON array of incidents, newest first. Google describes an incident by its
*impact* (``status_impact``, plus a ``severity``) and each update by the impact at that moment;
there is no Statuspage-style lifecycle, so it is derived:

| Google                                             | Snapshot                     |
| -------------------------------------------------- | ---------------------------- |
| incident with ``end`` set                          | status ``resolved``          |
| no ``end``, latest update ``AVAILABLE``            | ``resolved`` (at that update)|
| no ``end``, any other latest update                | ``investigating``            |
| update status ``AVAILABLE``                        | update ``resolved``          |
| update status ``SERVICE_*`` or anything else       | update ``investigating``     |
| ``SERVICE_OUTAGE`` (any severity)                  | impact ``critical``          |
| ``SERVICE_DISRUPTION`` + severity ``high``         | impact ``major``             |
| ``SERVICE_DISRUPTION`` + other or no severity      | impact ``minor``             |
| ``SERVICE_INFORMATION`` (any severity)             | impact ``minor``             |
| no or unknown impact: severity ``high`` / other    | ``major`` / ``minor``        |

The page indicator is the worst impact among open incidents, else ``none``. The optional
``product`` option keeps only incidents naming that product (case-insensitive, exact) in
``affected_products`` (``title`` or ``current_title``) or as ``service_name``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from bot.core.status import (
    Incident,
    IncidentStatus,
    IncidentUpdate,
    Indicator,
    PageInfo,
    Snapshot,
    SourceKind,
)
from bot.core.text import clean_source_line
from bot.sources.errors import SourceFormatError
from bot.sources.json_values import body_text, json_type_name, str_or_none, time_or_none

KIND = SourceKind.GCLOUD
BASE_URL = "https://status.cloud.google.com"
PAGE = PageInfo(name="Google Cloud", url=BASE_URL)
MAX_NAME_CHARS = 500

# Keys only an incidents.json entry has: an array of other objects is the wrong URL, not calm.
_INCIDENT_KEYS = frozenset(
    {"external_desc", "status_impact", "affected_products", "most_recent_update", "service_key"}
)
_IMPACTS = {
    Indicator.MINOR.value: Indicator.MINOR,
    Indicator.MAJOR.value: Indicator.MAJOR,
    Indicator.CRITICAL.value: Indicator.CRITICAL,
}
_RESOLVED_UPDATE = "AVAILABLE"


def parse_gcloud_bytes(body: bytes, *, options: Mapping[str, object] | None = None) -> Snapshot:
    """Decode a UTF-8 JSON body and parse it; SourceFormatError if it is not usable.

    ``options["product"]`` (a product title) filters incidents; any other value than a non-empty
    string there is a configuration error (ValueError), not a payload one.
    """
    product = _product(options)
    try:
        # utf-8-sig also accepts a leading BOM, which some proxies add.
        payload = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise SourceFormatError(f"body is not UTF-8 (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise SourceFormatError(f"invalid JSON: {exc.msg} at char {exc.pos}") from None
    except ValueError as exc:
        # e.g. an integer longer than Python's digit limit.
        raise SourceFormatError(f"invalid JSON: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise SourceFormatError("invalid JSON: nested too deeply") from None
    return parse_gcloud(payload, product=product)


def parse_gcloud(payload: object, *, product: str | None = None) -> Snapshot:
    """Parse a decoded incidents.json array into a Snapshot; SourceFormatError if unusable."""
    if not isinstance(payload, list):
        raise SourceFormatError(f"top level is a JSON {json_type_name(payload)}, not an array")
    entries = [entry for entry in payload if isinstance(entry, dict)]
    if payload and not any(_INCIDENT_KEYS & entry.keys() for entry in entries):
        raise SourceFormatError("array holds no Google Cloud incidents (no external_desc, …)")
    wanted = product.casefold() if product else None
    matching = (e for e in entries if wanted is None or wanted in _product_names(e))
    incidents = tuple(i for e in matching if (i := _incident(e)) is not None)
    worst = Indicator.NONE
    for incident in incidents:
        impact = _IMPACTS.get(incident.impact, Indicator.NONE)
        if incident.is_open and impact.rank > worst.rank:
            worst = impact
    return Snapshot(kind=KIND, page=PAGE, indicator=worst, incidents=incidents)


def _product(options: Mapping[str, object] | None) -> str | None:
    """The product filter from the source options, if any."""
    value = None if options is None else options.get("product")
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"gcloud option 'product' must be a non-empty string, not {value!r}")
    return value.strip()


def _product_names(entry: Mapping[str, object]) -> set[str]:
    """Every name the entry gives its products, casefolded for matching."""
    names = {str_or_none(entry.get("service_name"))}
    for product in _entries(entry.get("affected_products")):
        names.add(str_or_none(product.get("title")))
        # Google renames products and keeps the old title; current_title is the new one.
        names.add(str_or_none(product.get("current_title")))
    return {name.strip().casefold() for name in names if name}


def _incident(entry: Mapping[str, object]) -> Incident | None:
    """One incident, or None when it lacks an id or a description."""
    ident, name = str_or_none(entry.get("id")), _first_line(entry.get("external_desc"))
    if ident is None or name is None:
        return None
    updates = tuple(_updates(entry))
    latest = updates[0] if updates else None
    resolved_at = time_or_none(entry.get("end"))
    if resolved_at is None and latest is not None and latest.status == IncidentStatus.RESOLVED:
        resolved_at = latest.created_at
    return Incident(
        id=ident,
        name=name,
        status=IncidentStatus.INVESTIGATING if resolved_at is None else IncidentStatus.RESOLVED,
        impact=_impact(entry),
        started_at=time_or_none(entry.get("begin")) or time_or_none(entry.get("created")),
        resolved_at=resolved_at,
        url=_url(entry, ident),
        updates=updates,
        component_ids=tuple(_product_ids(entry)),
    )


def _product_ids(entry: Mapping[str, object]) -> Iterator[str]:
    """Ids of the affected products, which stand in for Statuspage component ids."""
    for product in _entries(entry.get("affected_products")):
        product_id = str_or_none(product.get("id"))
        if product_id is not None:
            yield product_id


def _updates(entry: Mapping[str, object]) -> Iterator[IncidentUpdate]:
    """Updates newest first; ``most_recent_update`` stands in when ``updates`` is absent."""
    raw = entry.get("updates")
    if not isinstance(raw, list):
        latest = entry.get("most_recent_update")
        raw = [latest] if isinstance(latest, dict) else []
    parsed = []
    for update in _entries(raw):
        created_at = (
            time_or_none(update.get("when"))
            or time_or_none(update.get("created"))
            or time_or_none(update.get("modified"))
        )
        if created_at is None:
            continue
        google_status = str_or_none(update.get("status"))
        parsed.append(
            IncidentUpdate(
                status=(
                    IncidentStatus.RESOLVED
                    if google_status == _RESOLVED_UPDATE
                    else IncidentStatus.INVESTIGATING
                ),
                body=body_text(update.get("text")),
                created_at=created_at,
            )
        )
    # Google publishes newest first; sorting makes that a guarantee (stable for equal times).
    yield from sorted(parsed, key=lambda update: update.created_at, reverse=True)


def _impact(entry: Mapping[str, object]) -> str:
    """Statuspage impact from Google's status_impact and severity (see the module table)."""
    impact = str_or_none(entry.get("status_impact"))
    if impact is None:
        # Older entries may carry the impact only on their latest update.
        latest = entry.get("most_recent_update")
        impact = str_or_none(latest.get("status")) if isinstance(latest, dict) else None
    high = str_or_none(entry.get("severity")) == "high"
    if impact == "SERVICE_OUTAGE":
        return Indicator.CRITICAL.value
    if impact == "SERVICE_INFORMATION":
        return Indicator.MINOR.value
    return Indicator.MAJOR.value if high else Indicator.MINOR.value


def _url(entry: Mapping[str, object], ident: str) -> str:
    """The incident's public page, from its relative ``uri`` (or its id)."""
    uri = str_or_none(entry.get("uri"))
    if uri is not None and uri.startswith(("https://", "http://")):
        return uri
    path = uri.lstrip("/") if uri else f"incidents/{ident}"
    return f"{BASE_URL}/{path}"


def _first_line(value: object) -> str | None:
    """The first non-blank line of a description, cut to MAX_NAME_CHARS."""
    if not isinstance(value, str):
        return None
    lines = (clean_source_line(line).strip() for line in value.splitlines())
    line = next((line for line in lines if line), None)
    if line is None or len(line) <= MAX_NAME_CHARS:
        return line
    return line[: MAX_NAME_CHARS - 1] + "…"


def _entries(raw: object) -> Iterator[Mapping[str, object]]:
    """The object entries of a list; anything else (wrong container, strings, nulls) is dropped."""
    if isinstance(raw, list):
        yield from (entry for entry in raw if isinstance(entry, dict))
