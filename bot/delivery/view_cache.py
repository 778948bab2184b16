"""What an alert looks like, worked out once per alert per worker round, not once per channel.

An incident fanned out to 5,000 channels would otherwise query its duration estimate and the
operational alternatives 5,000 times, with the same answer each time.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alert_render import AlertView
from bot.core.commands import Reply
from bot.delivery.alert_views import alert_view, alternatives_for, estimate_for, render_single
from bot.delivery.round_subscription import Subscribed
from bot.sources.catalog import Catalog
from bot.store.models import AlertRow


class RoundViews:
    """Alert views of one round, keyed by what they depend on (the alert's version included)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._views: dict[tuple[int, int, bool], AlertView] = {}
        self._replies: dict[tuple[int, int, bool], Reply] = {}

    def clear(self) -> None:
        """Forget everything: a new round sees the newest state."""
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
