"""The crowd detector's learned baseline, read back: what a service's users usually report.

The detector (`bot.core.crowd`) keeps one memory per service in ``crowd_memories``. The chart,
the dashboard and /report quote its baseline as "the usual", so they read it here, one way.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core import crowd
from bot.core.crowd_codec import decode_crowd_memory
from bot.store.crowd_models import CrowdMemoryRow

log = logging.getLogger(__name__)

# People are told what users usually report, not the detector's floor (which only sets how big a
# crowd must be before it warns): quiet services really do have a usual of about zero.
_UNFLOORED = 1e-9


async def learned_memory(*, session: AsyncSession, service_id: str) -> crowd.CrowdMemory | None:
    """The detector's memory of a service, or None before it has learned an hour (or unreadable)."""
    return _learned(await session.get(CrowdMemoryRow, service_id))


async def learned_memories(*, session: AsyncSession) -> dict[str, crowd.CrowdMemory]:
    """Every service's learned memory, by service id, in one query (for the overview)."""
    found = {}
    for row in (await session.exec(select(CrowdMemoryRow))).all():
        memory = _learned(row)
        if memory is not None:
            found[row.service_id] = memory
    return found


def usual_per_hour_at(
    memory: crowd.CrowdMemory, at: datetime, *, config: crowd.CrowdConfig | None = None
) -> float:
    """Counted reports per hour users usually send at ``at``, by the learned baseline (no floor)."""
    plain = replace(config or crowd.CrowdConfig(), floor_per_hour=_UNFLOORED)
    return crowd.expected_per_hour(memory, at, config=plain)


def _learned(row: CrowdMemoryRow | None) -> crowd.CrowdMemory | None:
    if row is None:
        return None
    try:
        memory = decode_crowd_memory(row.memory)
    except ValueError:
        log.warning("crowd memory of %s is unreadable; using stored reports", row.service_id)
        return None
    return memory if memory.learned_hours else None
