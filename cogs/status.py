"""/status: every tracked service at a glance, or one service in detail."""

from __future__ import annotations

import logging

from bot.charts.model import format_usual, usual_level
from bot.charts.service_chart import ReportActivity
from bot.core.commands import (
    Button,
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    ReplyField,
    Tone,
)
from bot.core.links import WebLink
from bot.core.rich import Plain, Quoted, RichText, Span, Strong, When, join_lines, rich
from bot.core.service_state import ServiceState, state_of_component
from bot.core.service_view import service_view
from bot.core.status import Incident, Snapshot
from bot.core.wording import impact_word
from bot.services import facts
from bot.services.deps import AppDeps
from bot.sources.catalog import ServiceDef
from bot.store import overview_store, service_state_store, source_store
from cogs.common import STATE_BADGE, STATE_TONE, resolve_service

log = logging.getLogger(__name__)

MAX_COMPONENTS_SHOWN = 15
MAX_INCIDENTS_SHOWN = 3
UPDATE_PREVIEW_CHARS = 600


def setup(registry: CommandRegistry) -> None:
    """Register /status."""
    registry.add(
        CommandSpec(
            name="status",
            description="Is it down? All services at a glance, or one in detail",
            handler=status,
            options=(
                OptionSpec(
                    "service",
                    "the service to show in detail, e.g. openai or claude",
                    kind=OptionKind.SERVICE,
                ),
            ),
        )
    )


async def status(ctx: Context[AppDeps], service: str | None) -> Reply:
    """Answer /status and /status <service>."""
    if service is None:
        return await _overview(ctx)
    return await _detail(ctx, resolve_service(ctx, service))


async def _overview(ctx: Context[AppDeps]) -> Reply:
    async with ctx.deps.sessions() as session:
        states = await service_state_store.service_states(session=session)
        open_counts = await service_state_store.open_incident_counts(session=session)
        warnings = await overview_store.open_warnings(session=session)
    lines: list[RichText] = []
    shown: list[ServiceState] = []
    services = list(ctx.deps.catalog)
    for service in services:
        record = states.get(service.id)
        state = record.state if record else ServiceState.UNKNOWN
        shown.append(state)
        line: list[Span] = [
            Plain(f"{STATE_BADGE[state]} "),
            Strong(service.name),
            Plain(f" — {state.label}"),
        ]
        if record and record.since and state is not ServiceState.OPERATIONAL:
            line += [Plain(" since "), When(record.since)]
        incidents = open_counts.get(service.id, 0)
        if incidents:
            line.append(Plain(f" · {incidents} open incident{'s' if incidents > 1 else ''}"))
        lines.append(tuple(line))
    head = facts.headline(shown, warnings=sum(1 for s in services if s.id in warnings))
    return Reply(
        title="Service status",
        body=join_lines([rich(head.sentence), (), *lines]),
        footer=rich("/status <service> for details · official status pages, polled continuously"),
        tone=STATE_TONE[head.worst] if head.trouble else Tone.OK,
    )


async def _detail(ctx: Context[AppDeps], service: ServiceDef) -> Reply:
    views: list[Snapshot] = []
    async with ctx.deps.sessions() as session:
        states = await service_state_store.service_states(session=session)
        probes = facts.probe_urls(service)
        probe_failing = await facts.probe_failing(session, service.id, probes)
        for source in service.official_sources:
            snapshot = await source_store.load_snapshot(session=session, url=source.url)
            if snapshot is not None:
                views.append(service_view(snapshot, service.components, (service.name,)))
    record = states.get(service.id)
    state = record.state if record else ServiceState.UNKNOWN
    headline: list[Span] = [Plain(f"{STATE_BADGE[state]} "), Strong(state.label)]
    if record and record.since:
        headline += [Plain(" since "), When(record.since)]
    body: list[RichText] = [tuple(headline)]
    if state is ServiceState.UNKNOWN:
        body.append(
            rich("I can't read the official status page right now; that alone is not an outage.")
        )
    body += _probe_lines(service, probed=bool(probes), failing=probe_failing)
    fields: list[ReplyField] = []
    incidents = 0
    for view in views:
        components = _components_field(view, stale=state is ServiceState.UNKNOWN)
        if components:
            fields.append(components)
        for incident in view.open_incidents[:MAX_INCIDENTS_SHOWN]:
            fields.append(_incident_field(incident))
            incidents += 1
    if not incidents and service.official_sources and state is not ServiceState.UNKNOWN:
        body.append(rich("No open incidents on the official status page."))
    activity = await _activity(ctx, service)
    if activity is not None:
        body.append(_reports_line(activity))
    if record and record.checked_at:
        body.append(rich("Last checked ", When(record.checked_at), "."))
    buttons: tuple[Button, ...] = (Button(label="I'm affected too", action=f"report {service.id}"),)
    status_page = WebLink.parse(service.status_page)
    if status_page is not None:
        buttons += (Button(label="Official status page", url=status_page),)
    chart = activity.chart if activity is not None else None
    return Reply(
        title=f"{service.name} status",
        body=join_lines(body),
        fields=tuple(fields),
        buttons=buttons,
        url=status_page,
        tone=STATE_TONE[state],
        image_png=chart.png if chart is not None else None,
        image_alt=chart.alt if chart is not None else "",
    )


async def _activity(ctx: Context[AppDeps], service: ServiceDef) -> ReportActivity | None:
    # The chart is extra: whatever goes wrong with it, /status still answers.
    try:
        return await ctx.deps.report_activity(service.id, now=ctx.now)
    except Exception:
        log.exception("report activity of %s could not be read", service.id)
        return None


def _reports_line(activity: ReportActivity) -> RichText:
    series = activity.series
    peak = series.peak
    if peak is None:
        return rich("No problem reports in the last 24 h.")
    total = series.total
    return rich(
        f"{total} problem report{'s' if total > 1 else ''} in the last 24 h. "
        f"Busiest {series.bucket_minutes} min: {series.counts[peak]} "
        f"(usual {format_usual(usual_level(series))}), from ",
        When(series.bucket_start(peak)),
        ".",
    )


def _probe_lines(service: ServiceDef, *, probed: bool, failing: bool) -> list[RichText]:
    if not probed:
        return []
    if failing:
        return [rich("⚠️ Our own API check is failing (unofficial: we test it from here).")]
    if not service.official_sources:
        return [rich("No official status page to read; this state comes from our own API check.")]
    return []


def _components_field(view: Snapshot, *, stale: bool) -> ReplyField | None:
    if not view.components:
        return None
    # Trouble first, so a long list never hides the broken component.
    chosen = sorted(view.components, key=lambda c: -state_of_component(c.status).rank)
    lines: list[RichText] = []
    for component in chosen[:MAX_COMPONENTS_SHOWN]:
        component_state = state_of_component(component.status)
        lines.append(
            rich(
                f"{STATE_BADGE[component_state]} ",
                Quoted(component.name),
                f" — {component_state.label}",
            )
        )
    hidden = len(chosen) - MAX_COMPONENTS_SHOWN
    if hidden > 0:
        lines.append(rich(f"…and {hidden} more"))
    name = "Components (last known)" if stale else "Components"
    return ReplyField(name=name, value=join_lines(lines), inline=False)


def _incident_field(incident: Incident) -> ReplyField:
    impact = impact_word(incident.impact)
    value: list[Span] = [Plain(f"{impact} impact · {incident.status}")]
    if incident.started_at:
        value += [Plain(" · started "), When(incident.started_at)]
    if incident.updates:
        latest = incident.updates[0]
        text = latest.body.strip()
        if len(text) > UPDATE_PREVIEW_CHARS:
            text = text[: UPDATE_PREVIEW_CHARS - 1].rstrip() + "…"
        value += [Plain("\nLatest update ("), When(latest.created_at), Plain("): "), Quoted(text)]
    if incident.url:
        value += [Plain("\nDetails: "), Plain(incident.url)]
    return ReplyField(name=f"Incident: {incident.name}", value=tuple(value), inline=False)
