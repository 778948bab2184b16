"""Two of Discord's message checks, answered like Discord: 400, code 50035 "Invalid Form Body".

Only what the outbox has got wrong before: custom_ids repeated within a message, and embeds
over 6,000 characters in total (title, description, field names and values, footer text,
author name). The error bodies copy the shape of Discord's own.
"""

from __future__ import annotations

from typing import Any

EMBED_TOTAL_LIMIT = 6000
INVALID_FORM_BODY = 50035


def form_body_error(body: Any) -> dict[str, Any] | None:
    """Discord's 400 answer for this message create/edit body, or None when it would pass."""
    if not isinstance(body, dict):
        return None
    errors: dict[str, Any] = {}
    seen: set[str] = set()
    for row_index, row in enumerate(body.get("components") or []):
        for index, component in enumerate(row.get("components") or []):
            custom_id = component.get("custom_id")
            if custom_id is None:
                continue
            if custom_id in seen:
                where = errors.setdefault("components", {}).setdefault(str(row_index), {})
                where.setdefault("components", {})[str(index)] = {
                    "custom_id": _errors(
                        "COMPONENT_CUSTOM_ID_DUPLICATED", "Component custom id cannot be duplicated"
                    )
                }
            seen.add(custom_id)
    for index, embed in enumerate(body.get("embeds") or []):
        if embed_total(embed) > EMBED_TOTAL_LIMIT:
            errors.setdefault("embeds", {})[str(index)] = _errors(
                "BASE_TYPE_MAX_LENGTH", "Embed size exceeds maximum size of 6000"
            )
    if not errors:
        return None
    return {"message": "Invalid Form Body", "code": INVALID_FORM_BODY, "errors": errors}


def embed_total(embed: dict[str, Any]) -> int:
    """Characters Discord counts toward an embed's 6,000."""
    fields = embed.get("fields") or []
    return (
        len(embed.get("title") or "")
        + len(embed.get("description") or "")
        + sum(len(f.get("name") or "") + len(f.get("value") or "") for f in fields)
        + len((embed.get("footer") or {}).get("text") or "")
        + len((embed.get("author") or {}).get("name") or "")
    )


def _errors(code: str, message: str) -> dict[str, Any]:
    return {"_errors": [{"code": code, "message": message}]}
