"""JSON encoding of the crowd detector's memory, so it survives restarts in one text column.

Pure: text in, text out. Times are ISO 8601 with their UTC offset; reporters stay the salted
hashes the caller gave (never raw user ids).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bot.core.crowd import WEEK_HOURS, CrowdLevel, CrowdMemory

FORMAT_VERSION = 1


def encode_crowd_memory(memory: CrowdMemory) -> str:
    """Serialise a CrowdMemory (reporters in their time order, which the detector relies on)."""
    return json.dumps(
        {
            "v": FORMAT_VERSION,
            "baseline": list(memory.baseline),
            "samples": list(memory.samples),
            "hour_start": _time(memory.hour_start),
            "hour_count": memory.hour_count,
            "hour_flagged": memory.hour_flagged,
            "latest": _time(memory.latest),
            "recent": [[who, at.isoformat(), where] for who, (at, where) in memory.recent.items()],
            "raw": [[minute.isoformat(), n] for minute, n in memory.raw.items()],
            "level": memory.level.value,
            "level_since": _time(memory.level_since),
            "pending_since": _time(memory.pending_since),
            "surge_started": _time(memory.surge_started),
        }
    )


def decode_crowd_memory(text: str) -> CrowdMemory:
    """Read back what encode_crowd_memory wrote; ValueError if it is not that."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("v") != FORMAT_VERSION:
            raise ValueError("not a crowd memory of a known version")
        baseline = tuple(float(b) for b in data["baseline"])
        samples = tuple(int(n) for n in data["samples"])
        if len(baseline) != WEEK_HOURS or len(samples) != WEEK_HOURS:
            raise ValueError("a crowd baseline has one bucket per hour of the week")
        return CrowdMemory(
            baseline=baseline,
            samples=samples,
            hour_start=_parse(data["hour_start"]),
            hour_count=int(data["hour_count"]),
            hour_flagged=bool(data["hour_flagged"]),
            latest=_parse(data["latest"]),
            recent={str(who): (_required(at), str(where)) for who, at, where in data["recent"]},
            raw={_required(minute): int(n) for minute, n in data["raw"]},
            level=CrowdLevel(data["level"]),
            level_since=_parse(data["level_since"]),
            pending_since=_parse(data["pending_since"]),
            surge_started=_parse(data["surge_started"]),
        )
    except (KeyError, TypeError) as error:
        raise ValueError(f"malformed crowd memory: {error!r}") from error


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _required(value: Any) -> datetime:
    parsed = _parse(value)
    if parsed is None:
        raise ValueError("a time is missing")
    return parsed
