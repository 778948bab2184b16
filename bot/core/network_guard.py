"""Tell "their service is down" from "our network is down" (pure, in memory)."""

from __future__ import annotations

from datetime import datetime, timedelta


class NetworkGuard:
    """Remembers the latest probe result per host; many hosts failing at once is our problem."""

    def __init__(
        self,
        *,
        window: timedelta = timedelta(minutes=3),
        min_hosts: int = 3,
        failing_share: float = 0.8,
    ) -> None:
        self._window = window
        self._min_hosts = min_hosts
        self._failing_share = failing_share
        self._latest: dict[str, tuple[datetime, bool]] = {}

    def record(self, host: str, *, ok: bool, at: datetime) -> None:
        """Remember the latest result for a host."""
        self._latest[host] = (at, ok)

    def suspect(self, now: datetime) -> bool:
        """Whether most recently probed hosts fail together, which points at our own network."""
        recent = [ok for at, ok in self._latest.values() if now - at <= self._window]
        if len(recent) < self._min_hosts:
            return False
        failing = sum(1 for ok in recent if not ok)
        return failing / len(recent) >= self._failing_share
