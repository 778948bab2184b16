"""Statuspage webhook notifications (incident or component events) → snapshot fragments."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.core.status import Snapshot
from bot.sources.errors import SourceFormatError
from bot.sources.statuspage import parse_statuspage


def parse_webhook(body: bytes) -> Snapshot:
    """A fragment holding the one incident or component a notification is about.

    The fragment lists nothing else, so it never implies that other incidents ended.
    """
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SourceFormatError("body is not JSON") from None
    if not isinstance(payload, dict):
        raise SourceFormatError("body is not a JSON object")
    incident, component = payload.get("incident"), payload.get("component")
    if isinstance(incident, dict):
        fragment = parse_statuspage({"incidents": [incident]})
        if not fragment.incidents:
            raise SourceFormatError("the incident has no id or name")
    elif isinstance(component, dict):
        fragment = parse_statuspage({"components": [component]})
        if not fragment.components:
            raise SourceFormatError("the component has no id or name, or is a group")
    else:
        raise SourceFormatError("neither an incident nor a component notification")
    return replace(fragment, lists_all_open_incidents=False)
