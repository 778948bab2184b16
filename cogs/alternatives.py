"""/alternatives: services that do the same job and are operational right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    Tone,
)
from bot.core.history import uptime_percent
from bot.core.rich import RichText, Strong, join_lines, rich
from bot.core.service_state import ServiceState
from bot.deps import AppDeps
from bot.sources.catalog import Catalog, ServiceDef
from bot.store import detection_store, repository
from cogs.common import STATE_BADGE, resolve_service

UPTIME_WINDOW = timedelta(days=30)
SHOWN = 8


@dataclass(frozen=True, slots=True)
class Alternative:
    """A service that could stand in, with why."""

    service: ServiceDef
    shared: tuple[str, ...]
    """Capability tags it shares with the service asked about."""
    uptime: float


def setup(registry: CommandRegistry) -> None:
    """Register /alternatives."""
    registry.add(
        CommandSpec(
            name="alternatives",
            description="Services that can do the same job and work right now",
            handler=alternatives,
            options=(
                OptionSpec(
                    "service",
                    "the service that is down, e.g. openai",
                    kind=OptionKind.SERVICE,
                    required=True,
                ),
            ),
        )
    )


def failing_upstreams(
    service: ServiceDef, catalog: Catalog, states: dict[str, ServiceState]
) -> set[str]:
    """Upstreams of ``service`` that may be why it fails.

    An upstream we track counts when it is not operational; one we don't track counts whenever
    the service itself is in trouble, since we cannot rule it out.
    """
    own = states.get(service.id, ServiceState.UNKNOWN)
    troubled = own.rank > ServiceState.MAINTENANCE.rank
    failing = set()
    for upstream in service.upstreams:
        tracked = catalog.get(upstream)
        if tracked is not None:
            state = states.get(tracked.id, ServiceState.UNKNOWN)
            if state.rank > ServiceState.MAINTENANCE.rank:
                failing.add(upstream)
        elif troubled:
            failing.add(upstream)
    return failing


async def operational_alternatives(
    *, session: AsyncSession, catalog: Catalog, service: ServiceDef, now: datetime
) -> list[Alternative]:
    """Operational services sharing a capability, minus those behind the same failing upstream.

    Best first: most shared capabilities, then highest uptime over `UPTIME_WINDOW`.
    """
    records = await repository.service_states(session=session)
    states = {sid: record.state for sid, record in records.items()}
    avoid = failing_upstreams(service, catalog, states)
    wanted = set(service.capabilities)
    found: list[Alternative] = []
    for other in catalog:
        if other.id == service.id or states.get(other.id) is not ServiceState.OPERATIONAL:
            continue
        shared = tuple(c for c in other.capabilities if c in wanted)
        if not shared or avoid & set(other.upstreams) or other.id in avoid:
            continue
        history = await detection_store.incident_history(
            session=session, service_id=other.id, since=now - UPTIME_WINDOW
        )
        uptime = uptime_percent(history, start=now - UPTIME_WINDOW, end=now)
        found.append(Alternative(other, shared, uptime))
    found.sort(key=lambda a: (-len(a.shared), -a.uptime, a.service.name))
    return found


def alternative_line(item: Alternative) -> RichText:
    """One alternative as a line: badge, name, shared capabilities, uptime."""
    return rich(
        f"{STATE_BADGE[ServiceState.OPERATIONAL]} ",
        Strong(item.service.name),
        f" — {', '.join(item.shared)} · {item.uptime:.2f} % up over 30 days",
    )


async def alternatives(ctx: Context[AppDeps], service: str) -> Reply:
    """Answer /alternatives <service>."""
    target = resolve_service(ctx, service)
    if not target.capabilities:
        return Reply(
            body=rich(
                f"I don't know what {target.name} is used for, so I can't suggest alternatives."
            ),
            ephemeral=True,
        )
    async with ctx.deps.sessions() as session:
        found = await operational_alternatives(
            session=session, catalog=ctx.deps.catalog, service=target, now=ctx.now
        )
    title = f"Alternatives to {target.name}"
    if not found:
        return Reply(
            title=title,
            body=rich(
                f"No service doing the same job ({', '.join(target.capabilities)}) is fully "
                "operational right now, as far as I can tell."
            ),
            tone=Tone.WARNING,
        )
    lines = [alternative_line(item) for item in found[:SHOWN]]
    more = len(found) - SHOWN
    if more > 0:
        lines.append(rich(f"…and {more} more."))
    return Reply(
        title=title,
        body=join_lines(
            [rich(f"Operational right now, for {', '.join(target.capabilities)}:"), *lines]
        ),
        footer=rich(
            "Same capability tags as ",
            target.name,
            "; services behind the same failing upstream are left out. Switching costs "
            "time: check prices, limits and data rules first.",
        ),
        tone=Tone.OK,
    )
