"""Draw a report series as a small PNG that reads on light and dark chat themes.

matplotlib's object API on the Agg canvas, never pyplot: pyplot picks a backend from the
environment (a GUI one on a desktop) and keeps global figures, neither of which a server wants.
"""

from __future__ import annotations

import io
import threading
from datetime import UTC, datetime, timedelta

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from bot.charts.model import Chart, ReportSeries, describe

HOUR = timedelta(hours=1)
WIDTH_PX, HEIGHT_PX, DPI = 800, 300, 100
# Mid-tones on a transparent background: the grey has about 3.5:1 contrast on both Discord's and
# Slack's light and dark backgrounds, and the colours stay apart for common colour blindness.
INK = "#8b8f98"
BARS = "#4f8ff7"
USUAL = "#f5a524"
INCIDENT = "#e5484d"
SHADE = 0.28  # incident shading: visible on dark, still light enough on white

# matplotlib's font and text caches are shared by every figure and not thread-safe; charts are
# rendered in worker threads, one at a time.
_DRAWING = threading.Lock()


def render_report_chart(series: ReportSeries) -> Chart:
    """The PNG (800×300) and its alt text. CPU-bound: call it off the event loop."""
    with _DRAWING:
        png = _draw(series)
    return Chart(png=png, alt=describe(series))


def _draw(series: ReportSeries) -> bytes:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    figure.patch.set_alpha(0.0)
    axes = figure.add_axes((0.06, 0.14, 0.92, 0.76))
    axes.patch.set_alpha(0.0)

    def x(moment: datetime) -> float:  # hours since the chart's start
        return (moment - series.start) / HOUR

    for window in series.incidents:
        left = max(window.started_at, series.start)
        right = min(window.ended_at or series.end, series.end)
        if right > left:
            axes.axvspan(x(left), x(right), color=INCIDENT, alpha=SHADE, lw=0, zorder=0)

    starts = [series.bucket_start(i) for i in range(len(series.counts))]
    # One collection of rectangles rather than a bar per bucket: axes.bar makes 96 artists,
    # which was half the render time.
    rectangles: list[list[tuple[float, float]]] = []
    for start, count in zip(starts, series.counts, strict=True):
        if count:
            # The last bucket is still filling: its bar is only as wide as the time passed.
            x0, x1 = x(start), x(min(start + series.bucket, series.end))
            x1 = x0 + (x1 - x0) * 0.9
            rectangles.append([(x0, 0.0), (x1, 0.0), (x1, float(count)), (x0, float(count))])
    bars = PolyCollection(
        rectangles,
        facecolors=BARS,
        linewidths=0,
        zorder=2,
        label=f"reports per {series.bucket_minutes} min",
    )
    axes.add_collection(bars, autolim=False)
    steps = [*starts, starts[-1] + series.bucket]
    usual = axes.stairs(
        series.usual,
        [x(s) for s in steps],
        color=USUAL,
        lw=1.6,
        ls=(0, (4, 2)),
        zorder=3,
        label="usual",
    )
    handles = [bars, usual]
    if series.incidents:
        handles.append(Patch(color=INCIDENT, alpha=SHADE, lw=0, label="official incident"))

    axes.set_xlim(0, x(series.end))
    top = max(max(series.counts), max(series.usual), 4.0)
    axes.set_ylim(0, top * 1.22)  # headroom for the legend
    ticks = _clock_ticks(series.start, series.end)
    axes.set_xticks([x(t) for t in ticks], [f"{t:%H:%M}" for t in ticks])
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    axes.tick_params(colors=INK, labelsize=9, length=3)
    axes.grid(axis="y", color=INK, alpha=0.25, lw=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(INK)
    axes.text(1.0, -0.13, "UTC", transform=axes.transAxes, ha="right", color=INK, fontsize=8)
    legend = axes.legend(
        handles=handles,
        loc="upper left",
        ncols=3,
        frameon=False,
        fontsize=9,
        handlelength=1.6,
        borderaxespad=0.1,
    )
    for text in legend.get_texts():
        text.set_color(INK)

    out = io.BytesIO()
    # No metadata: the same data gives the same bytes, and nothing about the host leaks.
    figure.savefig(out, format="png", dpi=DPI, transparent=True, metadata={"Software": None})
    return out.getvalue()


def _clock_ticks(start: datetime, end: datetime) -> list[datetime]:
    """Whole UTC hours inside the span: every third (00:00, 03:00, …), each for a short span."""
    span_hours = (end - start) / HOUR
    step = 3 if span_hours > 8 else 1
    tick = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    ticks = []
    while tick <= end:
        if tick >= start and tick.hour % step == 0:
            ticks.append(tick)
        tick += HOUR
    return ticks
