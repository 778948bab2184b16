"""Who is asking: workspace admin rights from users.info (cached briefly), and seen-request keys."""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.timeutil import Clock

log = logging.getLogger(__name__)

ADMIN_CACHE_TTL = timedelta(seconds=60)
MAX_CACHED_USERS = 5000


class AdminLookup:
    """Answers "is this user a workspace admin or owner?", remembering answers for a minute.

    A failed lookup answers no and is not remembered: an outage of users.info must not grant
    rights, and must not keep denying them once Slack answers again.
    """

    def __init__(self, *, clock: Clock, ttl: timedelta = ADMIN_CACHE_TTL) -> None:
        self._clock = clock
        self._ttl = ttl
        self._cache: OrderedDict[tuple[str, str], tuple[bool, datetime]] = OrderedDict()

    async def is_admin(self, client: AsyncWebClient, *, team_id: str, user_id: str) -> bool:
        """True when Slack says the user is an admin, owner or primary owner of the workspace."""
        key = (team_id, user_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            response = await client.users_info(user=user_id)
        except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("users.info failed for a Slack user; treating as non-admin: %s", exc)
            return False
        user = response.get("user") or {}
        answer = bool(
            isinstance(user, dict)
            and (user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        )
        self._cache[key] = (answer, now + self._ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_USERS:
            self._cache.popitem(last=False)
        return answer


class SeenKeys:
    """A bounded memory of request ids (trigger_id, event_id) already acted upon."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._keys: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """Record ``key``; True when it had not been seen before."""
        if key in self._keys:
            return False
        self._keys[key] = None
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)
        return True
