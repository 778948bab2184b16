"""/history: a service's incidents over a window, its uptime and mean time to recovery."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    ReplyField,
    Tone,
)
from bot.core.history import PastIncident, mean_time_to_recovery, uptime_percent
from bot.core.rich import Link, Plain, Quoted, Span, When, rich
from bot.core.text import truncate
from bot.core.timeutil import format_duration
from bot.core.wording import impact_word
from bot.services.deps import AppDeps
from bot.store import community_store, warning_store
from bot.store.community_store import StoredIncident
from cogs.common import resolve_service

DEFAULT_DAYS = 30
MAX_DAYS = 365
SHOWN = 10
_IMPACT_BADGE = {"critical": "🔴", "major": "🟠", "minor": "🟡", "none": "⚪"}


def setup(registry: CommandRegistry) -> None:
    """Register /history."""
    registry.add(
        CommandSpec(
            name="history",
            description="Past incidents of a service, its uptime and time to recovery",
            handler=history,
            options=(
                OptionSpec(
                    "service", "the service, e.g. openai", kind=OptionKind.SERVICE, required=True
                ),
                OptionSpec(
                    "days",
                    f"how far back, 1 to {MAX_DAYS} (default {DEFAULT_DAYS})",
                    kind=OptionKind.INTEGER,
                    min_value=1,
                    max_value=MAX_DAYS,
                ),
            ),
        )
    )


def past(incidents: list[StoredIncident]) -> list[PastIncident]:
    """What uptime and MTTR need of stored incidents."""
    return [PastIncident(i.started_at, i.resolved_at, i.impact) for i in incidents]


async def history(ctx: Context[AppDeps], service: str, days: int | None) -> Reply:
    """Answer /history <service> [days]."""
    target = resolve_service(ctx, service)
    window = days or DEFAULT_DAYS
    since = ctx.now - timedelta(days=window)
    async with ctx.deps.sessions() as session:
        incidents = await community_store.incidents_since(
            session=session, service_id=target.id, since=since
        )
        leads = await warning_store.lead_times(session=session, service_id=target.id, since=since)
    uptime = uptime_percent(past(incidents), start=since, end=ctx.now)
    mttr = mean_time_to_recovery(past(incidents))
    summary: list[Span] = [
        Plain(f"Last {window} days: {len(incidents)} incident{'s' if len(incidents) != 1 else ''}"),
        Plain(f" · uptime {uptime:.2f} %"),
        Plain(f" · mean time to recovery {format_duration(mttr)}" if mttr else ""),
        Plain("."),
    ]
    if not incidents:
        summary.append(Plain("\nNo incidents recorded in this window."))
    if leads:
        median = sorted(leads.values())[len(leads) // 2]
        summary.append(
            Plain(
                f"\nEarly warnings: {len(leads)} confirmed, a median of "
                f"{format_duration(timedelta(seconds=median))} before the official page."
            )
        )
    fields = tuple(_field(i, ctx.now, leads.get(i.external_id)) for i in incidents[:SHOWN])
    more = len(incidents) - SHOWN
    return Reply(
        title=f"{target.name}: history",
        body=tuple(summary),
        fields=fields,
        footer=rich(
            (f"{more} older incidents not shown · " if more > 0 else "")
            + "Uptime counts major and critical incidents as downtime; from official pages "
            "since outagebot began tracking."
        ),
        tone=Tone.INFO,
    )


def _field(incident: StoredIncident, now: datetime, lead: int | None) -> ReplyField:
    # The title is the status page's text: it goes in the value as Quoted, because field names
    # are not escaped alike by every renderer (Slack keeps their emphasis).
    badge = _IMPACT_BADGE.get(incident.impact, "🟡")
    if incident.resolved_at is not None:
        span = f"lasted {format_duration(incident.resolved_at - incident.started_at)}"
    else:
        span = f"ongoing for {format_duration(now - incident.started_at)}"
    value: list[Span] = [
        Quoted(truncate(incident.title, 200) or "Incident"),
        Plain("\nstarted "),
        When(incident.started_at, "datetime"),
    ]
    if lead is not None:
        value.append(
            Plain(f"\n⚡ Our early warning came {format_duration(timedelta(seconds=lead))} earlier")
        )
    if incident.url:
        value += [Plain("\n"), Link("Official incident page", incident.url)]
    return ReplyField(
        name=f"{badge} {impact_word(incident.impact)} · {span}",
        value=tuple(value),
        inline=False,
    )
