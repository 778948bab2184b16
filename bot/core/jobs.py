"""Recurring jobs, declared by the domain that owns them and scheduled by the runtime.

Each part that needs a cadence (the crowd watch, reminders, retention) says what to run and how
often; `bot.runtime.scheduling.add_jobs` turns that into scheduler jobs. The composition root
then only lists the parts, and a part's cadence lives next to the reason for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class Job:
    """Run ``run`` every ``every``; one run at a time, and missed runs collapse into one."""

    id: str
    run: Callable[[], Awaitable[object]]
    every: timedelta
