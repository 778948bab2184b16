"""Platform ids as they cross from an adapter into the core: text, but not any text.

Each is a plain ``str`` at run time (the store keeps them as text); the names keep a user id
from being passed where a channel or a community is meant.
"""

from __future__ import annotations

from typing import NewType

UserId = NewType("UserId", str)
"""A person on one platform: a Discord snowflake, a Slack ``U…``, ``console``."""
CommunityId = NewType("CommunityId", str)
"""Where commands and subscriptions belong: a Discord guild, a Slack workspace (team)."""
ChannelId = NewType("ChannelId", str)
"""A channel of a community, where replies and alerts go."""
