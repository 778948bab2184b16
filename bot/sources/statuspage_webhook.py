"""Statuspage webhook notifications (incident or component events) → snapshot fragments."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.core.status import Snapshot
from bot.sources.errors import SourceFormatError
from bot.sources.statuspage import parse_statuspage
from bot.sources.statuspage_merge import merge_parts


def parse_webhook(body: bytes) -> Snapshot:
    """A fragment holding the one incident or component a notification is about.

    The fragment lists nothing else, so it never implies that other incidents ended. An
    incident's fragment also holds the components the incident names (with their names), so
    the incident can be told apart from the other services of a shared page.
    """
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SourceFormatError("body is not JSON") from None
    if not isinstance(payload, dict):
        raise SourceFormatError("body is not a JSON object")
    incident, component = payload.get("incident"), payload.get("component")
    if isinstance(incident, dict):
        fragment = parse_statuspage(
            {"incidents": [incident], "components": incident.get("components")}
        )
        if not fragment.incidents:
            raise SourceFormatError("the incident has no id or name")
    elif isinstance(component, dict):
        fragment = parse_statuspage({"components": [component]})
        if not fragment.components:
            raise SourceFormatError("the component has no id or name, or is a group")
    else:
        raise SourceFormatError("neither an incident nor a component notification")
    return replace(fragment, lists_all_open_incidents=False)


def on_known_page(fragment: Snapshot, stored: Snapshot | None) -> Snapshot:
    """The fragment completed with the page's stored component list.

    Which service of a shared page an incident concerns is decided by the page's components
    (GitHub's page holds Copilot's component too): without the whole list, a service that
    watches one component would take every pushed incident for its own. The fragment's own
    components are the fresher; no incident is added, so nothing is implied to have ended.
    """
    if stored is None:
        return fragment
    page = replace(stored, incidents=(), maintenances=(), lists_all_open_incidents=False)
    return merge_parts(fragment, [page])
