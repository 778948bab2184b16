"""What an alert looks like in a channel (pure): the living message and its thread replies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.alerts import AlertKind
from bot.core.commands import Button, Reply, ReplyField, Tone
from bot.core.faq_facts import DurationEstimate
from bot.core.links import WebLink
from bot.core.rich import Plain, Quoted, RichText, Span, When, rich
from bot.core.status import MaintenanceStatus
from bot.core.timeutil import format_duration
from bot.core.wording import impact_adjective, impact_word

_IMPACT_BADGE = {"critical": "🔴", "major": "🟠", "minor": "🟡", "none": "🔧"}
_IMPACT_TONE = {"critical": Tone.DANGER, "major": Tone.DANGER, "minor": Tone.WARNING}
UPDATE_CHARS = 1500


@dataclass(frozen=True, slots=True)
class AlertView:
    """What rendering needs of an alert."""

    service_id: str
    service_name: str
    kind: str
    title: str
    status: str
    impact: str
    url: str | None
    components: tuple[str, ...]
    latest_update: str
    latest_update_at: datetime | None
    started_at: datetime
    resolved_at: datetime | None
    status_page: str | None = None
    estimate: DurationEstimate | None = None
    """How long similar past incidents lasted, for an open incident."""
    alternatives: tuple[str, ...] = ()
    """Services doing the same job that work now (major outages, when the channel wants it)."""


def render_alert(alert: AlertView) -> Reply:
    """The one living message of an alert, as it should look now."""
    if alert.kind == AlertKind.MAINTENANCE:
        return _render_maintenance(alert)
    resolved = alert.resolved_at is not None
    badge = "✅" if resolved else _IMPACT_BADGE.get(alert.impact, "🟡")
    title = f"{badge} {alert.service_name}: {alert.title}"
    lines: list[Span] = []
    if resolved and alert.resolved_at is not None:
        duration = format_duration(alert.resolved_at - alert.started_at)
        lines.append(Plain(f"Resolved after {duration}.\n"))
    if alert.latest_update:
        lines += [Plain("Latest official update: "), Quoted(_cut(alert.latest_update))]
    fields = [
        ReplyField("Severity", rich(impact_word(alert.impact))),
        ReplyField("Status", rich(alert.status.replace("_", " ").capitalize())),
        ReplyField("Started", rich(When(alert.started_at))),
    ]
    if alert.components:
        fields.append(ReplyField("Affected", (Quoted(", ".join(alert.components)[:900]),)))
    if not resolved and alert.alternatives:
        fields.append(ReplyField("Working alternatives now", rich(", ".join(alert.alternatives))))
    if not resolved and alert.estimate is not None:
        low, high = format_duration(alert.estimate.low), format_duration(alert.estimate.high)
        fields.append(
            ReplyField(
                "Similar incidents lasted",
                rich(f"{low} to {high} (middle half of {alert.estimate.count} past incidents)"),
            )
        )
    buttons = [Button(label="Live status", action=f"status {alert.service_id}")]
    if not resolved:
        buttons.append(Button(label="I'm affected too", action=f"report {alert.service_id}"))
    buttons.append(Button(label="Workarounds", action=f"workaround list {alert.service_id}"))
    incident_page = WebLink.parse(alert.url)
    if incident_page is not None:
        buttons.append(Button(label="Official incident page", url=incident_page))
    return Reply(
        title=title,
        body=tuple(lines),
        fields=tuple(fields),
        buttons=tuple(buttons),
        url=incident_page or WebLink.parse(alert.status_page),
        footer=rich("Official status page · mirrored by outagebot"),
        tone=Tone.OK if resolved else _IMPACT_TONE.get(alert.impact, Tone.WARNING),
    )


def render_digest(alerts: list[AlertView]) -> Reply:
    """One message for several incidents that started close together (a shared upstream)."""
    open_ones = [a for a in alerts if a.resolved_at is None]
    if open_ones:
        title = f"⚠️ {len(open_ones)} of {len(alerts)} services report problems"
    else:
        title = f"✅ All {len(alerts)} services recovered"
    lines: list[Span] = []
    for alert in alerts:
        if alert.resolved_at is not None:
            duration = format_duration(alert.resolved_at - alert.started_at)
            lines += [
                Plain(f"✅ {alert.service_name}: "),
                Quoted(alert.title),
                Plain(f" · resolved after {duration}\n"),
            ]
        else:
            badge = _IMPACT_BADGE.get(alert.impact, "🟡")
            lines += [Plain(f"{badge} {alert.service_name}: "), Quoted(alert.title)]
            impact = impact_adjective(alert.impact)
            lines += [Plain(f" · {impact}, since "), When(alert.started_at), Plain("\n")]
    worst = max(
        (a.impact for a in open_ones),
        key=lambda i: (
            ("minor", "major", "critical").index(i) if i in ("minor", "major", "critical") else 0
        ),
        default="none",
    )
    # One button per service: two incidents of one service would give two buttons with the
    # same action, and platforms refuse a message whose buttons share an id.
    services = {a.service_id: a.service_name for a in alerts}
    buttons = tuple(
        Button(label=name[:60], action=f"status {service_id}")
        for service_id, name in list(services.items())[:5]
    )
    return Reply(
        title=title,
        body=tuple(lines),
        buttons=buttons,
        footer=rich(
            "Several services at once often means a shared upstream. Updates in the thread."
        ),
        tone=_IMPACT_TONE.get(worst, Tone.OK if not open_ones else Tone.WARNING),
    )


def _render_maintenance(alert: AlertView) -> Reply:
    done = alert.resolved_at is not None
    state: dict[str, str] = {
        MaintenanceStatus.SCHEDULED: "Scheduled",
        MaintenanceStatus.IN_PROGRESS: "In progress",
        MaintenanceStatus.VERIFYING: "Verifying",
    }
    label = "Completed" if done else state.get(alert.status, alert.status.capitalize())
    fields = [ReplyField("Status", rich(label)), ReplyField("Starts", rich(When(alert.started_at)))]
    details = WebLink.parse(alert.url)
    buttons = (Button(label="Details", url=details),) if details else ()
    return Reply(
        title=f"🔧 {alert.service_name} maintenance: {alert.title}",
        fields=tuple(fields),
        buttons=buttons,
        url=details,
        tone=Tone.OK if done else Tone.INFO,
    )


def render_thread_update(
    status: str, body: str, at: datetime | None, *, service_name: str | None = None
) -> Reply:
    """A reply in the alert's thread carrying one official update (named in a digest's thread)."""
    head: list[Span] = [Plain(f"{service_name}: ")] if service_name else []
    head.append(Plain(f"{status.replace('_', ' ').capitalize()}"))
    if at is not None:
        head += [Plain(" · "), When(at, "datetime")]
    text: RichText = (*head, Plain("\n"), Quoted(_cut(body)))
    return Reply(body=text)


def render_reminder(alert: AlertView, now: datetime) -> Reply:
    """A thread reply saying an incident is still going on."""
    so_far = format_duration(now - alert.started_at)
    return Reply(
        body=rich(f"Still ongoing, {so_far} so far. I'll post here as soon as it changes.")
    )


def _cut(text: str) -> str:
    text = text.strip()
    return text if len(text) <= UPDATE_CHARS else text[: UPDATE_CHARS - 1].rstrip() + "…"
