"""Draw report charts with matplotlib when it is installed (the ``charts`` extra), else none.

matplotlib and numpy add about 55 MB to a process and about 180 MB to an install: it is imported
on the first chart, in the worker thread that draws, so a process nobody asks for a chart never
pays for it. Without it `/status` and the dashboard answer in text, and one log line says why.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.charts.model import Chart, ReportSeries

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'outagebot[charts]'"


class OptionalChartRenderer:
    """Calls matplotlib's renderer, or returns None for every chart when it cannot load."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # charts are drawn in worker threads
        self._render: Callable[[ReportSeries], Chart] | None = None
        self._unavailable = False

    def __call__(self, series: ReportSeries) -> Chart | None:
        render = self._loaded()
        return None if render is None else render(series)

    def _loaded(self) -> Callable[[ReportSeries], Chart] | None:
        with self._lock:
            if self._render is None and not self._unavailable:
                try:
                    from bot.charts.render import render_report_chart
                except ImportError as exc:
                    self._unavailable = True
                    log.warning(
                        "report charts are off (%s); replies go without them. To draw them: %s",
                        exc,
                        INSTALL_HINT,
                    )
                else:
                    self._render = render_report_chart
            return self._render
