"""Who is asking: admin rights from users.info or an admin user group (cached briefly), and
seen-request keys."""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from datetime import datetime, timedelta

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.timeutil import Clock

log = logging.getLogger(__name__)

ADMIN_CACHE_TTL = timedelta(seconds=60)
MAX_CACHED_USERS = 5000
MAX_CACHED_GROUPS = 1000
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,30}$")
_LOOKUP_ERRORS = (SlackApiError, aiohttp.ClientError, TimeoutError)


class AdminLookup:
    """Answers "is this user a workspace admin or owner?", remembering answers for a minute.

    With ``admin_group`` (a user group id ``S…`` or its handle, ``@oncall``), members of that
    group are admins too; members are read with usergroups.users.list, per workspace, and
    remembered as long as the answers. A failed lookup answers no and is not remembered: an
    outage of users.info must not grant rights, and must not keep denying them once Slack
    answers again.
    """

    def __init__(
        self, *, clock: Clock, ttl: timedelta = ADMIN_CACHE_TTL, admin_group: str | None = None
    ) -> None:
        self._clock = clock
        self._ttl = ttl
        self._cache: OrderedDict[tuple[str, str], tuple[bool, datetime]] = OrderedDict()
        self._group = (admin_group or "").strip().lstrip("@") or None
        self._members: OrderedDict[str, tuple[frozenset[str], datetime]] = OrderedDict()

    async def is_admin(self, client: AsyncWebClient, *, team_id: str, user_id: str) -> bool:
        """True when Slack says the user is an admin, owner or primary owner of the workspace."""
        key = (team_id, user_id)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            response = await client.users_info(user=user_id)
        except _LOOKUP_ERRORS as exc:
            log.warning("users.info failed for a Slack user; treating as non-admin: %s", exc)
            return False
        user = response.get("user") or {}
        answer = bool(
            isinstance(user, dict)
            and (user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))
        )
        if not answer and self._group is not None:
            members = await self._group_members(client, team_id=team_id)
            if members is None:
                return False  # unknown, not "no": do not remember it
            answer = user_id in members
        self._cache[key] = (answer, now + self._ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_USERS:
            self._cache.popitem(last=False)
        return answer

    async def _group_members(
        self, client: AsyncWebClient, *, team_id: str
    ) -> frozenset[str] | None:
        now = self._clock()
        cached = self._members.get(team_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            group_id = await self._group_id(client)
            if group_id is None:
                log.warning("SLACK_ADMIN_GROUP names no user group of workspace %s", team_id)
                members: frozenset[str] = frozenset()
            else:
                response = await client.usergroups_users_list(usergroup=group_id)
                users = response.get("users")
                members = frozenset(u for u in users or [] if isinstance(u, str))
        except _LOOKUP_ERRORS as exc:
            log.warning("usergroups lookup failed; group members count as non-admins: %s", exc)
            return None
        self._members[team_id] = (members, now + self._ttl)
        self._members.move_to_end(team_id)
        while len(self._members) > MAX_CACHED_GROUPS:
            self._members.popitem(last=False)
        return members

    async def _group_id(self, client: AsyncWebClient) -> str | None:
        group = self._group or ""
        if _GROUP_ID.match(group):
            return group
        # A handle: the same name works in every workspace, where an id belongs to one.
        response = await client.usergroups_list()
        for item in response.get("usergroups") or []:
            if isinstance(item, dict) and item.get("handle") == group:
                found = item.get("id")
                return found if isinstance(found, str) else None
        return None


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
