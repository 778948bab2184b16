"""What an alert looks like, worked out once per alert and second, not once per channel.

An incident fanned out to 5,000 channels would otherwise query its duration estimate and the
operational alternatives 5,000 times, with the same answer each time. Views are kept across the
worker's rounds for up to `FRESH_FOR` (a large fan-out goes in rounds of up to 500, several a
second): the same `Reply` objects then let the senders reuse their renderings too
(`bot.delivery.render_once`). A new alert version is a new key, so an update is never shown
stale; the live facts in a view (how long such incidents last, which alternatives work) are at
most that old.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.commands import Reply
from bot.core.timeutil import Clock
from bot.delivery.alert_views import alert_view, alternatives_for, estimate_for, render_single
from bot.delivery.render_once import FRESH_FOR
from bot.delivery.round_subscription import Subscribed
from bot.sources.catalog import Catalog
from bot.store.models import AlertRow


class RoundViews:
    """Alert views, keyed by what they depend on (the alert's version included), each kept
    for `FRESH_FOR`."""

    def __init__(self, catalog: Catalog, clock: Clock, *, fresh_for: timedelta = FRESH_FOR) -> None:
        self._catalog = catalog
        self._clock = clock
        self._fresh_for = fresh_for
        self._since: datetime | None = None
        self._views: dict[tuple[int, int, bool], AlertView] = {}
        self._replies: dict[tuple[int, int, bool], Reply] = {}

    def start_round(self) -> None:
        """A round begins: forget the views once they are `FRESH_FOR` old (all at once, so
        that a round never mixes views of different ages)."""
        now = self._clock()
        if self._since is not None and now - self._since < self._fresh_for:
            return
        self._since = now
        self._views.clear()
        self._replies.clear()

    async def view(
        self, session: AsyncSession, alert: AlertRow, subscription: Subscribed
    ) -> AlertView:
        """The view of ``alert`` as ``subscription``'s channel shows it."""
        key = (alert.id or 0, alert.version, subscription.alternatives)
        if key not in self._views:
            self._views[key] = alert_view(
                alert,
                self._catalog,
                await estimate_for(session, alert),
                await alternatives_for(session, alert, subscription, self._catalog),
            )
        return self._views[key]

    async def single(
        self, session: AsyncSession, alert: AlertRow, subscription: Subscribed
    ) -> Reply:
        """The message of ``alert`` alone (`render_single`) as ``subscription``'s channel shows
        it: built once per round for every channel that shows the same."""
        key = (alert.id or 0, alert.version, subscription.alternatives)
        if key not in self._replies:
            view = await self.view(session, alert, subscription)
            self._replies[key] = await render_single(session, alert, view, self._catalog)
        return self._replies[key]
