"""Early warnings (pure): when the crowd's reports open, change and close an unofficial alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from bot.core.commands import Button, Reply, ReplyField, Tone
from bot.core.crowd import CrowdLevel
from bot.core.links import WebLink
from bot.core.rich import Plain, Quoted, Span, When, rich
from bot.core.timeutil import format_duration

LEVEL_LABELS = {
    CrowdLevel.NONE: "Back to normal",
    CrowdLevel.POSSIBLE: "Possible problems",
    CrowdLevel.REPORTED: "Problems reported",
    CrowdLevel.WIDESPREAD: "Widespread problems",
}


class WarningOutcome(StrEnum):
    """How an early warning ended (stored in ``early_warnings.outcome``)."""

    CONFIRMED = "confirmed"
    """The official page then reported an incident."""
    FADED = "faded"
    """Reports went back to normal with no official incident."""


@dataclass(frozen=True, slots=True)
class CrowdReading:
    """What the crowd detector says about one service now."""

    level: CrowdLevel
    reports: int
    reporters: int
    communities: int
    ratio: float | None
    first_report_at: datetime | None
    probe_failing: bool = False
    window_minutes: int = 10


@dataclass(frozen=True, slots=True)
class WarningView:
    """What rendering an early warning needs."""

    service_id: str
    service_name: str
    provider: str
    reading: CrowdReading
    opened_at: datetime
    official_state: str
    outcome: str | None = None  # a WarningOutcome once closed
    closed_at: datetime | None = None
    incident_title: str | None = None
    incident_url: str | None = None
    lead_seconds: int | None = None


def render_early_warning(view: WarningView) -> Reply:
    """The unofficial alert, clearly marked as such, with the facts behind it."""
    reading = view.reading
    if view.outcome == WarningOutcome.CONFIRMED:
        lead = format_duration_seconds(view.lead_seconds or 0)
        body: list[Span] = [Plain(f"Confirmed by {view.provider} {lead} after the first reports")]
        if view.incident_title:
            body += [Plain(": "), Quoted(view.incident_title)]
        body.append(Plain(". Official updates follow in the incident alert."))
        incident = WebLink.parse(view.incident_url)
        buttons = (Button(label="Official incident", url=incident),) if incident else ()
        return Reply(
            title=f"✔️ {view.service_name}: outage confirmed",
            body=tuple(body),
            buttons=buttons,
            tone=Tone.WARNING,
        )
    if view.outcome == WarningOutcome.FADED and view.closed_at is not None:
        lasted = format_duration(view.closed_at - (reading.first_report_at or view.opened_at))
        return Reply(
            title=f"{view.service_name}: reports back to normal",
            body=rich(
                f"Reports returned to normal after {lasted}. "
                "The official page never reported an incident."
            ),
            tone=Tone.OK,
        )
    facts = (
        f"{reading.reports} reports in {reading.window_minutes} min from {reading.reporters} "
        f"people in {reading.communities} communities"
    )
    if reading.ratio is not None:
        facts += f" ({reading.ratio:.0f}× usual)"
    lines: list[Span] = [Plain(f"Possible outage (unconfirmed): {facts}")]
    if reading.probe_failing:
        lines.append(Plain(", and our API check is failing"))
    lines.append(Plain(f". The official status page still says {view.official_state}."))
    fields = (
        ReplyField("Level", rich(LEVEL_LABELS[reading.level])),
        ReplyField("First report", (When(reading.first_report_at or view.opened_at),)),
    )
    return Reply(
        title=f"⚠️ {view.service_name}: users report problems",
        body=tuple(lines),
        fields=fields,
        buttons=(
            Button(label="I'm affected too", action=f"report {view.service_id}"),
            Button(label="Live status", action=f"status {view.service_id}"),
        ),
        footer=rich("Unofficial: based on reports from communities using outagebot."),
        tone=Tone.WARNING,
    )


def format_duration_seconds(seconds: int) -> str:
    """A lead time in words."""
    return format_duration(timedelta(seconds=seconds))
