"""The real Discord adapter against the fake Discord: interactions as Discord sends them today.

Shared by the Discord end-to-end tests (adapter, forms, reconnects, gateway chaos).
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.adapters.discord import DiscordAdapter, DiscordConfig
from bot.app import App, open_app
from bot.core.timeutil import Clock
from bot.settings import Settings
from tests.fakes.discord_interactions import as_sent_today
from tests.fakes.discord_server import APPLICATION_ID, CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.helpers import write_catalog

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "discord"
SLASH = json.loads(
    (FIXTURES / "discord_interaction_type2_slash_command_discord-docs.json").read_text()
)
BUTTON = json.loads(
    (FIXTURES / "discord_interaction_type3_button_full_discord-docs-2024.json").read_text()
)
AUTOCOMPLETE = json.loads(
    (FIXTURES / "discord_interaction_type4_autocomplete_discord-docs.json").read_text()
)
CALLBACK = r"/interactions/\d+/[^/]+/callback"
ADMIN = "2147483647"  # the fixture's member: every permission
MEMBER = "1024"  # view channel only
_ids = itertools.count(900_000_000_000_000_001)


@dataclass
class DiscordBot:
    fake: FakeDiscord
    adapter: WatchedDiscordAdapter
    app: App
    state_file: Path

    async def interact(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Dispatch INTERACTION_CREATE and return the callback body the bot answered with."""
        count = len(self.fake.matching("POST", CALLBACK)) + 1
        await self.fake.dispatch("INTERACTION_CREATE", payload)
        call = await self.fake.wait_for_call("POST", CALLBACK, count=count)
        assert call.path.startswith(f"/interactions/{payload['id']}/")
        body: dict[str, Any] = call.json
        return body


def stamp(payload: dict[str, Any], *, channel_object: bool = True) -> dict[str, Any]:
    """A fresh id and token, and every field today's Discord sends (see `as_sent_today`)."""
    interaction_id = str(next(_ids))
    payload.update(
        id=interaction_id, token=f"token-{interaction_id}", application_id=APPLICATION_ID
    )
    payload.setdefault("version", 1)
    # Fields the API added after the docs' examples were written; discord.py requires them.
    payload.setdefault("attachment_size_limit", 10_485_760)
    if "member" in payload:
        payload["member"] = {**payload["member"], "flags": 0}
    return as_sent_today(payload, channel_object=channel_object)


def slash(
    name: str,
    /,
    *,
    permissions: str = ADMIN,
    guild_id: str | None = GUILD_ID,
    channel_object: bool = True,
    **options: str | int | bool,
) -> dict[str, Any]:
    """The docs' example slash interaction, turned into /name with these options, as sent today.

    ``channel_object=False``: only ``channel_id``, as in Discord's documented example."""
    payload = copy.deepcopy(SLASH)
    payload["data"] = {
        "id": "771825006014889984",
        "name": name,
        "type": 1,
        "options": [
            {"name": k, "type": {bool: 5, int: 4}.get(type(v), 3), "value": v}
            for k, v in options.items()
        ],
    }
    payload["channel_id"] = CHANNEL_ID
    payload["member"]["permissions"] = permissions
    if guild_id is None:  # a DM: a user instead of a member, no guild
        payload["user"] = payload.pop("member")["user"]
        del payload["guild_id"]
    else:
        payload["guild_id"] = guild_id
    return stamp(payload, channel_object=channel_object)


def settings_for(tmp_path: Path) -> Settings:
    catalog = write_catalog(
        tmp_path / "catalog.toml",
        {
            "openai-api": "http://127.0.0.1:9/openai/api/v2/summary.json",
            "anthropic": "http://127.0.0.1:9/anthropic/api/v2/summary.json",
        },
    )
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=catalog,
    )


class WatchedDiscordAdapter(DiscordAdapter):
    """The real adapter, plus what only a test needs: waiting until it serves."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._readied = asyncio.Event()

    def on_ready(self) -> None:
        super().on_ready()
        self._readied.set()

    async def wait_until_ready(self) -> None:
        """Until every shard of this process has its guilds (again, after a reconnect)."""
        while not (self.ready and self.problem is None):
            self._readied.clear()
            await self._readied.wait()


def config_for(fake: FakeDiscord, state_file: Path, **overrides: Any) -> DiscordConfig:
    base: dict[str, Any] = {
        "token": "fake-token",
        "api_base": fake.api_base,
        "gateway_url": fake.gateway_url,
        "commands_state_file": state_file,
        "guild_ready_timeout": 0.05,
    }
    return DiscordConfig(**(base | overrides))


def embed_of(body: dict[str, Any]) -> dict[str, Any]:
    embed: dict[str, Any] = body["data"]["embeds"][0]
    return embed


@asynccontextmanager
async def running_discord_bot(
    fake: FakeDiscord, tmp_path: Path, clock: Clock, *, identify_at_once: bool = False
) -> AsyncIterator[DiscordBot]:
    """The real app and Discord adapter logged in to ``fake`` (a running fake Discord).

    ``identify_at_once`` skips discord.py's 5 s (wall clock) wait before identifying again after
    an invalid session: Discord needs no such wait from a single shard, and a test must not sleep.
    """
    async with open_app(settings_for(tmp_path), clock=clock) as app:
        state_file = tmp_path / "data" / "discord_commands.sha256"
        adapter = WatchedDiscordAdapter(
            config=config_for(fake, state_file), deps=app.deps, clock=clock
        )
        await adapter.start()
        if identify_at_once:
            adapter.client.before_identify_hook = _identify_at_once  # type: ignore[method-assign]
        try:
            await fake.wait_for_gateway()
            await adapter.wait_until_ready()
            yield DiscordBot(fake, adapter, app, state_file)
        finally:
            await adapter.stop()


async def _identify_at_once(shard_id: int | None, *, initial: bool = False) -> None:
    """Identify with no wait (see `running_discord_bot`)."""
