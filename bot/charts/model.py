"""A service's crowd reports over a time span, as plain data, and the words that describe it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

MAX_INCIDENTS_DESCRIBED = 3


@dataclass(frozen=True, slots=True)
class IncidentWindow:
    """When an official incident was open; ``ended_at`` is None while it still is."""

    started_at: datetime
    ended_at: datetime | None
    impact: str = "none"


@dataclass(frozen=True, slots=True)
class ReportSeries:
    """Counted reports per bucket from ``start`` up to ``end``, against the usual level.

    Buckets sit on a fixed grid from ``start``; the last one is still filling up to ``end``.
    ``usual`` is the expected count of a whole bucket, from the crowd detector's baseline.
    """

    service_id: str
    start: datetime
    end: datetime
    bucket: timedelta
    counts: tuple[int, ...]
    usual: tuple[float, ...]
    incidents: tuple[IncidentWindow, ...] = ()

    def __post_init__(self) -> None:
        if len(self.usual) != len(self.counts):
            raise ValueError("counts and usual must have one value per bucket")
        if self.bucket <= timedelta(0) or self.end < self.start:
            raise ValueError("the bucket must be positive and the span must not run backwards")

    def bucket_start(self, index: int) -> datetime:
        """When bucket ``index`` begins."""
        return self.start + index * self.bucket

    @property
    def total(self) -> int:
        """Counted reports in the whole span."""
        return sum(self.counts)

    @property
    def peak(self) -> int | None:
        """Index of the busiest bucket (the earliest on a tie), or None without reports."""
        if not self.total:
            return None
        return max(range(len(self.counts)), key=lambda i: (self.counts[i], -i))

    @property
    def quiet(self) -> bool:
        """Nothing to show: no report and no official incident in the span."""
        return self.total == 0 and not self.incidents

    @property
    def bucket_minutes(self) -> int:
        """The bucket length in whole minutes."""
        return int(self.bucket / timedelta(minutes=1))


@dataclass(frozen=True, slots=True)
class Chart:
    """A rendered chart and the text that says what it shows (for screen readers and logs)."""

    png: bytes
    alt: str


def format_usual(value: float) -> str:
    """A usual count as people say it: ``0``, ``0.4``, ``2``, ``38``."""
    if value < 0.05:
        return "0"
    if value < 0.95:
        return f"{value:.1f}"
    return f"{value:.0f}"


def usual_level(series: ReportSeries) -> float:
    """The usual count per bucket the text quotes: at the peak, or the span's median."""
    peak = series.peak
    if peak is not None:
        return series.usual[peak]
    ordered = sorted(series.usual)
    return ordered[len(ordered) // 2] if ordered else 0.0


def describe(series: ReportSeries) -> str:
    """Alt text: what the chart shows, with the numbers a reader would take from it."""
    hours = round((series.end - series.start) / timedelta(hours=1))
    head = f"Reports per {series.bucket_minutes} min over the last {hours} h: "
    peak = series.peak
    usual = format_usual(usual_level(series))
    if peak is None:
        text = head + f"none, usual {usual}"
    else:
        at = _clock(series.bucket_start(peak))
        text = head + f"peak {series.counts[peak]} at {at} UTC, usual {usual}"
    return text + _incidents_phrase(series)


def _incidents_phrase(series: ReportSeries) -> str:
    windows = series.incidents
    if not windows:
        return ""
    spans = [_span(w, series) for w in windows[:MAX_INCIDENTS_DESCRIBED]]
    hidden = len(windows) - len(spans)
    if hidden:
        spans.append(f"{hidden} more")
    noun = "official incident" if len(windows) == 1 else "official incidents"
    listed = spans[0] if len(spans) == 1 else ", ".join(spans[:-1]) + " and " + spans[-1]
    return f"; {noun} {listed} shaded"


def _span(window: IncidentWindow, series: ReportSeries) -> str:
    start = window.started_at.astimezone(UTC)
    # A start outside the chart gets its date, so "09:00" never reads as this morning.
    begun = _clock(start) if start >= series.start else f"{start:%d %b} {_clock(start)}"
    return f"{begun}–{'now' if window.ended_at is None else _clock(window.ended_at)}"


def _clock(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M}"
