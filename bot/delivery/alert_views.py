"""How a stored alert becomes the message a channel sees: single, digest or early warning."""

from __future__ import annotations

import json
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import (
    AlertView,
    render_alert,
    render_digest,
    render_reminder,
    render_thread_update,
)
from bot.core.alerts import AlertKind
from bot.core.commands import Reply
from bot.core.early_warning import WarningView, render_early_warning
from bot.core.faq_facts import DurationEstimate
from bot.core.rich import Link, Plain, Quoted, Span
from bot.core.service_state import ServiceState
from bot.delivery.round_subscription import Subscribed
from bot.services import facts
from bot.services.alternatives import operational_alternatives
from bot.sources.catalog import Catalog
from bot.store import warning_store
from bot.store.crowd_models import EarlyWarningRow
from bot.store.models import AlertMessageRow, AlertRow, ServiceRow, SubscriptionRow


def alert_view(
    alert: AlertRow,
    catalog: Catalog,
    estimate: DurationEstimate | None = None,
    alternatives: tuple[str, ...] = (),
) -> AlertView:
    """What rendering needs of a stored alert."""
    service = catalog.get(alert.service_id)
    return AlertView(
        service_id=alert.service_id,
        service_name=service.name if service else alert.service_id,
        kind=alert.kind,
        title=alert.title,
        status=alert.status,
        impact=alert.impact,
        url=alert.url,
        components=tuple(c for c in alert.components.split("\n") if c),
        latest_update=alert.latest_update,
        latest_update_at=alert.latest_update_at,
        started_at=alert.started_at,
        resolved_at=alert.resolved_at,
        status_page=service.status_page if service else None,
        estimate=estimate,
        alternatives=alternatives,
    )


async def estimate_for(session: AsyncSession, alert: AlertRow) -> DurationEstimate | None:
    """For an open incident: how long similar past incidents of this service lasted."""
    if alert.kind != AlertKind.INCIDENT or alert.resolved_at is not None:
        return None
    fact = await facts.duration_estimate(
        session, service_id=alert.service_id, impact=alert.impact, started_at=alert.started_at
    )
    return fact.estimate


async def alternatives_for(
    session: AsyncSession, alert: AlertRow, subscription: Subscribed, catalog: Catalog
) -> tuple[str, ...]:
    """Names of services doing the same job that work now, for a major outage's alert."""
    serious = alert.kind == AlertKind.INCIDENT and alert.impact in {"major", "critical"}
    if not (serious and alert.resolved_at is None and subscription.alternatives):
        return ()
    service = catalog.get(alert.service_id)
    if service is None:
        return ()
    found = await operational_alternatives(
        session=session, catalog=catalog, service=service, now=alert.updated_at
    )
    return tuple(a.service.name for a in found[:3])


async def render_message(
    session: AsyncSession, message: AlertMessageRow, subscription: SubscriptionRow, catalog: Catalog
) -> Reply:
    """The alert a message shows, or the digest of every incident sharing it."""
    alerts = (
        await session.exec(
            select(AlertRow)
            .join(AlertMessageRow, col(AlertMessageRow.alert_id) == col(AlertRow.id))
            .join(SubscriptionRow, col(SubscriptionRow.id) == col(AlertMessageRow.subscription_id))
            .where(
                AlertMessageRow.message_id == message.message_id,
                SubscriptionRow.platform == subscription.platform,
                SubscriptionRow.community_id == subscription.community_id,
                SubscriptionRow.channel_id == subscription.channel_id,
            )
            .order_by(col(AlertRow.started_at))
        )
    ).all()
    if len(alerts) == 1:
        alert = alerts[0]
        view = alert_view(
            alert,
            catalog,
            await estimate_for(session, alert),
            await alternatives_for(session, alert, subscription, catalog),
        )
        return await render_single(session, alert, view, catalog)
    return render_digest([alert_view(a, catalog) for a in alerts])


async def render_single(
    session: AsyncSession, alert: AlertRow, view: AlertView, catalog: Catalog
) -> Reply:
    """One alert's message: an incident or maintenance, or an early warning."""
    if alert.kind != AlertKind.EARLY_WARNING:
        return render_alert(view)
    warning = (
        await session.exec(select(EarlyWarningRow).where(EarlyWarningRow.alert_id == alert.id))
    ).first()
    if warning is None:
        return render_alert(view)
    facts = json.loads(warning.facts or "{}")
    service = catalog.get(alert.service_id)
    stored = await session.get(ServiceRow, alert.service_id)
    official = ServiceState(stored.state).label.lower() if stored else "unknown"
    return render_early_warning(
        WarningView(
            service_id=alert.service_id,
            service_name=view.service_name,
            provider=service.provider if service else view.service_name,
            reading=warning_store.reading_from(warning.facts),
            opened_at=warning.opened_at,
            official_state=official,
            outcome=warning.outcome,
            closed_at=warning.closed_at,
            incident_title=facts.get("incident_title"),
            incident_url=facts.get("incident_url"),
            lead_seconds=warning.lead_seconds,
        )
    )


def thread_reply(body: str, view: AlertView, *, named: bool) -> Reply:
    """The thread reply a THREAD delivery's stored ``body`` describes: an update or a reminder.
    ``named``: the message covers several services, so the reply says which one it is about."""
    data = json.loads(body or "{}")
    if data.get("reminder"):
        return render_reminder(view, datetime.fromisoformat(data["reminder"]))
    at = datetime.fromisoformat(data["at"]) if data.get("at") else None
    return render_thread_update(
        str(data.get("status", "update")),
        str(data.get("body", "")),
        at,
        service_name=view.service_name if named else None,
    )


def minimal_reply(view: AlertView) -> Reply:
    """Title, status and link, nothing else: sent once when a platform refused our message
    (`PayloadRejectedError`), so the channel still learns of the alert."""
    status = "resolved" if view.resolved_at is not None else view.status.replace("_", " ")
    body: list[Span] = [Plain("Status: "), Quoted(status)]
    link = view.url or view.status_page
    if link:
        body += [Plain(" · "), Link("details", link)]
    return Reply(title=f"{view.service_name}: {view.title}", body=tuple(body))
