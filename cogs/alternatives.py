"""/alternatives: services that do the same job and are operational right now."""

from __future__ import annotations

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    Tone,
)
from bot.core.rich import RichText, Strong, join_lines, rich
from bot.core.service_state import ServiceState
from bot.services.alternatives import Alternative, operational_alternatives, same_job
from bot.services.deps import AppDeps
from cogs.common import STATE_BADGE, resolve_service

SHOWN = 8


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
    if not same_job(target, ctx.deps.catalog):
        return Reply(
            title=title,
            body=rich(
                f"I don't track another service that does the same job "
                f"({', '.join(target.capabilities)}), so I have none to suggest."
            ),
            tone=Tone.INFO,
        )
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
