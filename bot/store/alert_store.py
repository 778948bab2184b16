"""Alerts, subscriptions and the outbox. Writers stage changes; the caller commits.

Deliveries are written in the same transaction as the detection events that cause them (the
poller calls `record_alert_events` before its commit), so an event is never stored without its
deliveries, nor a delivery without its event.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import (
    EDIT,
    POST,
    THREAD,
    AlertChange,
    AlertKind,
    SubscriptionRule,
    change_for,
    wants,
)
from bot.core.events import DetectionEvent, EventKind
from bot.core.status import CLOSED_INCIDENT_STATUSES
from bot.store import warning_store
from bot.store.models import AlertMessageRow, AlertRow, DeliveryRow, SubscriptionRow


def rule_of(row: SubscriptionRow) -> SubscriptionRule:
    """The pure rule of a stored subscription."""
    return SubscriptionRule(
        id=row.id or 0,
        service_id=row.service_id,
        components=tuple(c for c in row.components.split("\n") if c),
        min_severity=row.min_severity,
        maintenance=row.maintenance,
    )


async def record_alert_events(
    *, session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
) -> int:
    """Apply detection events to alerts and stage one delivery per action per channel."""
    staged = 0
    for event in events:
        if event.kind is EventKind.INCIDENT_OPENED and event.incident_id:
            # The provider admits it: an open early warning becomes "confirmed, N min later".
            staged += await warning_store.confirm(
                session=session,
                service_id=event.service_id,
                incident_id=event.incident_id,
                incident_title=event.title,
                incident_url=event.detail.get("url"),
                started_at=event.at,
                now=now,
            )
        change = change_for(event)
        if change is None:
            continue
        alert = await _apply(session, event.service_id, change, now)
        if alert is not None:
            staged += await _fan_out(session, alert, change, event.key, now)
    return staged


async def _apply(
    session: AsyncSession, service_id: str, change: AlertChange, now: datetime
) -> AlertRow | None:
    alert = (
        await session.exec(
            select(AlertRow).where(
                AlertRow.service_id == service_id, AlertRow.subject_id == change.subject_id
            )
        )
    ).first()
    if alert is None:
        if change.resolved_at is not None:
            return None  # the end of something never told (seen first while it ran): no alert
        alert = AlertRow(
            service_id=service_id,
            subject_id=change.subject_id,
            kind=change.kind,
            title=change.title or "Incident",
            status=change.status,
            impact=change.impact,
            started_at=change.started_at or now,
            updated_at=now,
            version=0,
        )
    alert.title = (change.title or alert.title)[:500]
    alert.status, alert.impact = change.status, change.impact
    alert.url = change.url or alert.url
    if change.components:
        alert.components = "\n".join(change.components)
    if change.update_body is not None:
        alert.latest_update, alert.latest_update_at = change.update_body, change.update_at
    if change.started_at is not None:
        alert.started_at = min(alert.started_at, change.started_at)
    if change.resolved_at is not None:
        alert.resolved_at = change.resolved_at
    elif change.status not in CLOSED_INCIDENT_STATUSES:
        alert.resolved_at = None  # reopened by the provider
    alert.version += 1
    alert.updated_at = now
    session.add(alert)
    await session.flush()
    return alert


async def _fan_out(
    session: AsyncSession, alert: AlertRow, change: AlertChange, event_key: str, now: datetime
) -> int:
    alert_id = alert.id or 0
    subscriptions = (
        await session.exec(
            select(SubscriptionRow).where(
                SubscriptionRow.service_id == alert.service_id,
                col(SubscriptionRow.enabled).is_(True),
            )
        )
    ).all()
    posted = set(
        (
            await session.exec(
                select(DeliveryRow.subscription_id).where(
                    DeliveryRow.alert_id == alert_id, DeliveryRow.action == POST
                )
            )
        ).all()
    )
    components = tuple(c for c in alert.components.split("\n") if c)
    staged = 0
    for subscription in subscriptions:
        sub_id = subscription.id or 0
        actions: list[str] = []
        if sub_id in posted:
            actions = [EDIT, THREAD] if change.thread_note else [EDIT]
        elif (alert.resolved_at is None or change.opens) and wants(
            rule_of(subscription), kind=alert.kind, impact=alert.impact, components=components
        ):
            # New alerts, and ones that grew past this channel's threshold (minor → major).
            actions = [POST]
        for action in actions:
            body = ""
            if action == THREAD:
                body = json.dumps(
                    {
                        "status": change.update_status or change.status,
                        "body": change.update_body or "",
                        "at": change.update_at.isoformat() if change.update_at else None,
                    }
                )
            session.add(
                DeliveryRow(
                    key=f"{action}:{alert_id}:{sub_id}:{event_key}"[:200],
                    alert_id=alert_id,
                    subscription_id=sub_id,
                    platform=subscription.platform,
                    action=action,
                    body=body,
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            staged += 1
    return staged


async def stage_reminders(*, session: AsyncSession, now: datetime, every: timedelta) -> int:
    """Stage "still ongoing" thread replies for incidents open longer than each multiple of
    ``every``; never more than one per interval per channel."""
    open_alerts = (
        await session.exec(
            select(AlertRow).where(
                AlertRow.kind == AlertKind.INCIDENT, col(AlertRow.resolved_at).is_(None)
            )
        )
    ).all()
    staged = 0
    for alert in open_alerts:
        due = int((now - alert.started_at) / every)
        if due <= alert.reminders_sent:
            continue
        alert.reminders_sent = due
        session.add(alert)
        messages = (
            await session.exec(select(AlertMessageRow).where(AlertMessageRow.alert_id == alert.id))
        ).all()
        for message in messages:
            subscription = await session.get(SubscriptionRow, message.subscription_id)
            if subscription is None or not subscription.enabled:
                continue
            session.add(
                DeliveryRow(
                    key=f"reminder:{alert.id}:{message.subscription_id}:{due}",
                    alert_id=alert.id or 0,
                    subscription_id=message.subscription_id,
                    platform=subscription.platform,
                    action=THREAD,
                    body=json.dumps({"reminder": now.isoformat()}),
                    next_attempt_at=now,
                    created_at=now,
                )
            )
            staged += 1
    return staged


async def stage_open_alerts(
    *, session: AsyncSession, subscription: SubscriptionRow, now: datetime
) -> int:
    """A channel subscribing mid-outage gets the alerts that are open right now."""
    open_alerts = (
        await session.exec(
            select(AlertRow).where(
                AlertRow.service_id == subscription.service_id, col(AlertRow.resolved_at).is_(None)
            )
        )
    ).all()
    rule = rule_of(subscription)
    staged = 0
    for alert in open_alerts:
        components = tuple(c for c in alert.components.split("\n") if c)
        if not wants(rule, kind=alert.kind, impact=alert.impact, components=components):
            continue
        key = f"{POST}:{alert.id}:{subscription.id}:on-subscribe"
        if (await session.exec(select(DeliveryRow.id).where(DeliveryRow.key == key))).first():
            continue
        session.add(
            DeliveryRow(
                key=key,
                alert_id=alert.id or 0,
                subscription_id=subscription.id or 0,
                platform=subscription.platform,
                action=POST,
                next_attempt_at=now,
                created_at=now,
            )
        )
        staged += 1
    return staged
