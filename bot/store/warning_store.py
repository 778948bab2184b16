"""Early warnings: open, update, confirm or fade them, staging deliveries like any alert."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import EDIT, POST, AlertKind
from bot.core.crowd import CrowdLevel
from bot.core.early_warning import CrowdReading, WarningOutcome
from bot.store.crowd_models import EarlyWarningRow
from bot.store.models import AlertRow, DeliveryRow, SubscriptionRow


async def open_warning(*, session: AsyncSession, service_id: str) -> EarlyWarningRow | None:
    """The service's early warning that is still open, if any."""
    return (
        await session.exec(
            select(EarlyWarningRow).where(
                EarlyWarningRow.service_id == service_id, col(EarlyWarningRow.closed_at).is_(None)
            )
        )
    ).first()


async def apply_reading(
    *,
    session: AsyncSession,
    service_id: str,
    reading: CrowdReading,
    now: datetime,
    official_open: bool,
) -> int:
    """Open, update or fade the service's early warning; returns deliveries staged.

    No warning opens while the official page already has an open incident (or had one since the
    surge began: ``official_open`` then too): the official alert says it better. Nor without
    anyone reporting in the window: "0 reports from 0 people" warns of nothing.
    """
    warning = await open_warning(session=session, service_id=service_id)
    if warning is None:
        if reading.level is CrowdLevel.NONE or official_open or reading.reporters == 0:
            return 0
        first = reading.first_report_at or now
        alert = AlertRow(
            service_id=service_id,
            subject_id=f"ew-{int(now.timestamp())}",
            kind=AlertKind.EARLY_WARNING,
            title="Users report problems",
            status=reading.level.value,
            impact="minor",
            started_at=first,
            updated_at=now,
            version=1,
        )
        session.add(alert)
        await session.flush()
        session.add(
            EarlyWarningRow(
                service_id=service_id,
                alert_id=alert.id,
                level=reading.level.value,
                first_report_at=first,
                opened_at=now,
                facts=_facts(reading),
            )
        )
        return await _stage(session, alert, now, opening=True)
    current = await session.get(AlertRow, warning.alert_id) if warning.alert_id else None
    if current is None:
        return 0
    alert = current
    if reading.level is CrowdLevel.NONE:
        # Keep the surge's facts: the closing edit says how long it lasted from its first report.
        warning.outcome, warning.closed_at = WarningOutcome.FADED, now
        warning.level = reading.level.value
        alert.resolved_at = now
    elif warning.level == reading.level.value:
        warning.facts = _facts(reading)  # fresher numbers, shown at the next edit
        session.add(warning)
        return 0
    else:
        warning.level, warning.facts = reading.level.value, _facts(reading)
    alert.status, alert.version, alert.updated_at = reading.level.value, alert.version + 1, now
    session.add_all([warning, alert])
    return await _stage(session, alert, now, opening=False)


async def confirm(
    *,
    session: AsyncSession,
    service_id: str,
    incident_id: str,
    incident_title: str | None,
    incident_url: str | None,
    started_at: datetime | None,
    now: datetime,
) -> int:
    """The official incident opened: say so on the warning, with the lead time we had."""
    warning = await open_warning(session=session, service_id=service_id)
    if warning is None or warning.alert_id is None:
        return 0
    alert = await session.get(AlertRow, warning.alert_id)
    if alert is None:
        return 0
    official_at = started_at or now
    warning.outcome, warning.closed_at = WarningOutcome.CONFIRMED, now
    warning.incident_id = incident_id
    warning.lead_seconds = max(0, int((official_at - warning.first_report_at).total_seconds()))
    facts = json.loads(warning.facts or "{}")
    facts.update(incident_title=incident_title, incident_url=incident_url)
    warning.facts = json.dumps(facts, default=str)
    alert.resolved_at, alert.version, alert.updated_at = now, alert.version + 1, now
    session.add_all([warning, alert])
    return await _stage(session, alert, now, opening=False)


def _facts(reading: CrowdReading) -> str:
    data = asdict(reading)
    data["level"] = reading.level.value
    return json.dumps(data, default=str)


def reading_from(facts: str) -> CrowdReading:
    """The stored reading of a warning."""
    data = json.loads(facts or "{}")
    first = data.get("first_report_at")
    return CrowdReading(
        level=CrowdLevel(data.get("level", "possible")),
        reports=int(data.get("reports", 0)),
        reporters=int(data.get("reporters", 0)),
        communities=int(data.get("communities", 0)),
        ratio=float(data["ratio"]) if data.get("ratio") is not None else None,
        first_report_at=datetime.fromisoformat(first) if first else None,
        probe_failing=bool(data.get("probe_failing", False)),
        window_minutes=int(data.get("window_minutes", 10)),
    )


async def _stage(session: AsyncSession, alert: AlertRow, now: datetime, *, opening: bool) -> int:
    posted = set(
        (
            await session.exec(
                select(DeliveryRow.subscription_id).where(
                    DeliveryRow.alert_id == alert.id, DeliveryRow.action == POST
                )
            )
        ).all()
    )
    subscriptions = (
        await session.exec(
            select(SubscriptionRow).where(
                SubscriptionRow.service_id == alert.service_id,
                col(SubscriptionRow.enabled).is_(True),
                col(SubscriptionRow.early_warnings).is_(True),
            )
        )
    ).all()
    staged = 0
    for subscription in subscriptions:
        sub_id = subscription.id or 0
        action = EDIT if sub_id in posted else POST if opening else None
        if action is None:
            continue
        session.add(
            DeliveryRow(
                key=f"{action}:{alert.id}:{sub_id}:v{alert.version}",
                alert_id=alert.id or 0,
                subscription_id=sub_id,
                platform=subscription.platform,
                action=action,
                next_attempt_at=now,
                created_at=now,
            )
        )
        staged += 1
    return staged


async def lead_times(*, session: AsyncSession, service_id: str, since: datetime) -> dict[str, int]:
    """Seconds our early warning came before each official incident, by incident id."""
    rows = (
        await session.exec(
            select(EarlyWarningRow).where(
                EarlyWarningRow.service_id == service_id,
                EarlyWarningRow.outcome == WarningOutcome.CONFIRMED,
                col(EarlyWarningRow.opened_at) >= since,
            )
        )
    ).all()
    return {r.incident_id: r.lead_seconds or 0 for r in rows if r.incident_id}
