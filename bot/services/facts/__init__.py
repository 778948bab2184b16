"""The read model: what the chat commands, the dashboard and delivery say about services.

One definition of each fact (issue #20): the usual report rate, whether our own API check
fails, the overview's headline and the duration estimate (`bot.services.usual_levels`,
`levels`, `headline`), and a
service at a glance or in detail (`summaries`). Built on store queries only: the SQL lives in
``bot/store``. docs/architecture.md, "One read model: facts".
"""

from bot.services.facts.headline import Headline, headline
from bot.services.facts.levels import DurationFact, duration_estimate, probe_failing, probe_urls
from bot.services.facts.summaries import (
    ComponentFact,
    DayFact,
    EarlyWarningFact,
    HistoryFact,
    IncidentFact,
    ServiceDetail,
    ServiceSummary,
    WorkaroundFact,
    detail,
    history_of,
    incidents,
    report_counts,
    summaries,
    summary,
)
from bot.services.usual_levels import UsualLevels, usual_per_hour, usual_rate

__all__ = [
    "ComponentFact",
    "DayFact",
    "DurationFact",
    "EarlyWarningFact",
    "Headline",
    "HistoryFact",
    "IncidentFact",
    "ServiceDetail",
    "ServiceSummary",
    "UsualLevels",
    "WorkaroundFact",
    "detail",
    "duration_estimate",
    "headline",
    "history_of",
    "incidents",
    "probe_failing",
    "probe_urls",
    "report_counts",
    "summaries",
    "summary",
    "usual_per_hour",
    "usual_rate",
]
