"""JSON encoding of detection memory, so it survives restarts in one text column."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.detection import IncidentMemo, ServiceMemory

FORMAT_VERSION = 1


def encode_memory(memory: ServiceMemory) -> str:
    """Serialise a ServiceMemory."""
    return json.dumps(
        {
            "v": FORMAT_VERSION,
            "last_observed": _time(memory.last_observed),
            "components": dict(memory.components),
            "incidents": {key: _encode_incident(memo) for key, memo in memory.incidents.items()},
            "maintenances": dict(memory.maintenances),
            "source_failures": memory.source_failures,
            "source_stale": memory.source_stale,
            "probe_failures": memory.probe_failures,
            "probe_successes": memory.probe_successes,
            "probe_down": memory.probe_down,
        },
        sort_keys=True,
    )


def decode_memory(text: str) -> ServiceMemory:
    """Read back what encode_memory wrote; ValueError if it is not that."""
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
        raise ValueError("not a detection memory of a known version")
    return ServiceMemory(
        last_observed=_parse(data.get("last_observed")),
        components={str(k): str(v) for k, v in data["components"].items()},
        incidents={str(k): _decode_incident(v) for k, v in data["incidents"].items()},
        maintenances={str(k): str(v) for k, v in data["maintenances"].items()},
        source_failures=int(data["source_failures"]),
        source_stale=bool(data["source_stale"]),
        probe_failures=int(data["probe_failures"]),
        probe_successes=int(data["probe_successes"]),
        probe_down=bool(data["probe_down"]),
    )


def _encode_incident(memo: IncidentMemo) -> dict[str, Any]:
    return {
        "status": memo.status,
        "impact": memo.impact,
        "first_seen": _time(memo.first_seen),
        "update_keys": sorted(memo.update_keys),
        "announced": memo.announced,
        "resolved_at": _time(memo.resolved_at),
        "postmortem": memo.postmortem,
    }


def _decode_incident(data: dict[str, Any]) -> IncidentMemo:
    first_seen = _parse(data["first_seen"])
    if first_seen is None:
        raise ValueError("incident memo without first_seen")
    return IncidentMemo(
        status=str(data["status"]),
        impact=str(data["impact"]),
        first_seen=first_seen,
        update_keys=frozenset(str(k) for k in data["update_keys"]),
        announced=bool(data["announced"]),
        resolved_at=_parse(data.get("resolved_at")),
        postmortem=bool(data["postmortem"]),
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _parse(value: object) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None
