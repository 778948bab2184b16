"""The body and signature of an outgoing webhook (schema ``outagebot.alert.v1``).

docs/webhooks.md documents every field; a change that removes or renames one is a new schema
version, never an edit of this one (receivers parse it by name).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime

from bot.core.alerts import POST
from bot.core.timeutil import format_timestamp
from bot.delivery.sender import AlertData

SCHEMA = "outagebot.alert.v1"
SECRET_PREFIX = "whsec_"  # noqa: S105  (a marker, like "xoxb-"; not a secret)
TIMESTAMP_HEADER = "X-Outagebot-Timestamp"
SIGNATURE_HEADER = "X-Outagebot-Signature"
DELIVERY_HEADER = "X-Outagebot-Delivery"


def new_secret() -> str:
    """A fresh signing secret (256 random bits)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def event_name(data: AlertData) -> str:
    """``alert.opened`` for the first delivery, then ``alert.updated`` or ``alert.resolved``."""
    if data.action == POST:
        return "alert.opened"
    return "alert.resolved" if data.view.resolved_at is not None else "alert.updated"


def build_payload(data: AlertData, *, sent_at: datetime) -> dict[str, object]:
    """The JSON document a receiver gets for one delivery."""
    view = data.view
    duration = (
        int((view.resolved_at - view.started_at).total_seconds())
        if view.resolved_at is not None
        else None
    )
    return {
        "schema": SCHEMA,
        "delivery_id": data.delivery_key,
        "event": event_name(data),
        "service": {"id": view.service_id, "name": view.service_name},
        "incident": {
            "id": data.subject_id,
            "kind": view.kind,
            "title": view.title,
            "components": list(view.components),
            "version": data.version,
        },
        "severity": view.impact,
        "status": view.status,
        "update": (
            {"text": view.latest_update, "at": format_timestamp(view.latest_update_at)}
            if view.latest_update
            else None
        ),
        "links": {"incident": view.url, "status_page": view.status_page},
        "timestamps": {
            "started_at": format_timestamp(view.started_at),
            "resolved_at": format_timestamp(view.resolved_at),
            "duration_seconds": duration,
            "sent_at": format_timestamp(sent_at),
        },
    }


def encode(payload: dict[str, object]) -> bytes:
    """Compact UTF-8 JSON: the exact bytes that are signed and sent."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` + hex HMAC-SHA256 of ``<timestamp>.<body>``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()
