"""The Discord adapter: a discord.py client whose every slash command and button ends in dispatch.

Interaction → `Source` + `Origin` → `CommandPipeline` → `render_reply` → interaction response.
Slash commands arrive through an `app_commands.CommandTree` generated from the registry; ``ob:``
buttons arrive in ``on_interaction`` and are matched by prefix alone, so they work on messages
sent before a restart. discord.py owns the gateway: heartbeats, reconnects, resumes and shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket

from bot.adapters.discord.commands import build_commands, sync_if_changed
from bot.adapters.discord.render import (
    ACTION_PREFIX,
    FORM_PREFIX,
    DiscordMessage,
    render_form,
    render_reply,
    submitted_values,
)
from bot.core.commands import Actor, CommandSpec, Reply, error_reply
from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.pipeline import Call, CommandPipeline, Line, Origin, Source, Submission
from bot.core.timeutil import Clock
from bot.services.deps import AppDeps

log = logging.getLogger(__name__)

DM_TEXT = "I work inside servers: use my commands in a server channel where I'm installed."
NOT_INSTALLED_TEXT = (
    "I'm not installed in this server, so I can't answer here. "
    "Ask a server admin to add me (with the bot and applications.commands scopes)."
)
FAILURE_TEXT = "Something went wrong on our side. It has been logged; please try again."
GATEWAY_AUTHENTICATION_FAILED = 4004
"""The gateway's close code for a token it refuses (the API may still have taken it)."""
UNKNOWN_INTERACTION = 10062
"""Discord's code for an interaction answered after its 3 s (or answered twice, by some)."""
MAX_REMEMBERED_CHANNELS = 1024
"""Interactions whose raw ``channel_id`` is kept: far more than are answered at once."""


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    """What the adapter needs from settings, already parsed."""

    token: str
    api_base: str
    gateway_url: str
    dev_guild: int | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    commands_state_file: Path = Path("data/discord_commands.sha256")
    defer_after_seconds: float = 1.5
    """Answer directly when the handler is faster than this; otherwise defer and follow up
    (0: always defer first)."""
    guild_ready_timeout: float = 2.0
    start_wait_seconds: float = 10.0
    """How long start-up waits for the first login (and command sync); it goes on after."""


def point_discord_py_at(api_base: str, gateway_url: str) -> tuple[str, yarl.URL]:
    """Aim discord.py's REST client and gateway at other endpoints; returns the old ones.

    discord.py keeps both as class attributes: `Route.BASE` (REST, also used for interaction
    callbacks and webhooks) and `DiscordWebSocket.DEFAULT_GATEWAY` (used when the shard count is
    given, and after an invalidated session). With no shard count, the gateway URL comes from
    ``GET /gateway/bot`` on the same REST base. These are process-wide, like the token bucket.
    """
    old = (discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    return old


Sleep = Callable[[float], Awaitable[None]]
_UNREACHABLE = (
    OSError,
    aiohttp.ClientError,
    TimeoutError,
    discord.GatewayNotFound,
    discord.DiscordServerError,
)
"""Discord (or the way to it) is down: worth a warning and another try, not a traceback."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with jitter, so restarted bots do not reconnect in step."""

    first_seconds: float = 2.0
    max_seconds: float = 300.0
    jitter: Callable[[], float] = random.random

    def delay(self, attempt: int) -> float:
        """Seconds to wait before try ``attempt + 1``: half fixed, half random."""
        ceiling = min(self.max_seconds, self.first_seconds * 2.0 ** min(attempt, 30))
        return ceiling / 2 + ceiling / 2 * self.jitter()


class _Tree(app_commands.CommandTree[discord.Client]):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        log.error("Discord command failed", exc_info=error)
        await _send_failure(interaction, FAILURE_TEXT)


class OutageClient(discord.AutoShardedClient):
    """The discord.py client: minimal intents, command sync in setup_hook, button routing."""

    def __init__(self, adapter: DiscordAdapter, config: DiscordConfig) -> None:
        # Guilds only: enough to know where we are installed; no message content, no members.
        sharding: dict[str, Any] = {"shard_count": config.shard_count}
        if config.shard_ids is not None:
            sharding["shard_ids"] = list(config.shard_ids)
        super().__init__(
            intents=discord.Intents(guilds=True),
            allowed_mentions=discord.AllowedMentions.none(),
            guild_ready_timeout=config.guild_ready_timeout,
            **sharding,
        )
        self.adapter = adapter
        self.tree = _Tree(self)
        self._raw_channel_ids: OrderedDict[int, int] = OrderedDict()
        parsers = self._connection.parsers
        parse_interaction = parsers["INTERACTION_CREATE"]

        def remember_channel_then_parse(data: Any) -> None:
            self._remember_channel_id(data)
            parse_interaction(data)

        parsers["INTERACTION_CREATE"] = remember_channel_then_parse

    def _remember_channel_id(self, data: Any) -> None:
        # discord.py takes the channel id from the payload's ``channel`` object only; payloads
        # with just ``channel_id`` would leave commands without a channel, so keep it aside.
        try:
            interaction_id, channel_id = int(data["id"]), int(data["channel_id"])
        except (KeyError, TypeError, ValueError):
            return
        self._raw_channel_ids[interaction_id] = channel_id
        while len(self._raw_channel_ids) > MAX_REMEMBERED_CHANNELS:
            self._raw_channel_ids.popitem(last=False)

    def channel_id_of(self, interaction: discord.Interaction) -> int | None:
        """The channel an interaction came from, from its channel object or its ``channel_id``."""
        return interaction.channel_id or self._raw_channel_ids.get(interaction.id)

    async def setup_hook(self) -> None:
        """Build the command tree from the registry and sync it when it changed."""
        await self.adapter.setup(self)

    async def on_ready(self) -> None:
        """Every shard of this process has its guilds (again, after a new session)."""
        self.adapter.on_ready()

    async def on_interaction(self, interaction: discord.Interaction) -> None:
        """Route ``ob:`` button clicks and ``obf:`` form submits; slash commands use the tree."""
        data: Any = interaction.data or {}
        custom_id = str(data.get("custom_id", ""))
        kind = interaction.type
        if kind is discord.InteractionType.component and custom_id.startswith(ACTION_PREFIX):
            await self.adapter.handle_button(interaction, custom_id[len(ACTION_PREFIX) :])
        elif kind is discord.InteractionType.modal_submit and custom_id.startswith(FORM_PREFIX):
            await self.adapter.handle_form(
                interaction, custom_id[len(FORM_PREFIX) :], submitted_values(data)
            )


class DiscordAdapter:
    """Serves every registered command as a Discord slash command."""

    name = "discord"

    def __init__(
        self,
        *,
        config: DiscordConfig,
        deps: AppDeps,
        clock: Clock,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._config = config
        self._deps = deps
        self._clock = clock
        self._pipeline = CommandPipeline(deps.registry, deps, clock)
        self._backoff = backoff or Backoff()
        self._sleep = sleep
        self._client: OutageClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._previous_endpoints: tuple[str, yarl.URL] | None = None
        self._was_ready = False  # this connection got as far as ready: the backoff starts over
        self._first_login_done = asyncio.Event()
        self._stopping = False
        self.problem: str | None = "connecting"
        """Why the adapter is not serving (what ``/readyz`` says), or None once ready."""
        self.gave_up = asyncio.Event()
        """Set when Discord refused the token: no more attempts until a restart."""

    @property
    def client(self) -> OutageClient:
        """The running discord.py client."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    @property
    def ready(self) -> bool:
        """Logged in and every shard of this process has received its guilds."""
        client = self._client
        # A closed client can still say it is ready: its shards' flag is not always cleared.
        return client is not None and not client.is_closed() and client.is_ready()

    async def start(self) -> None:
        """Begin logging in (syncing commands if needed) and connecting, in the background.

        Never fails for Discord being away: the connection is retried with capped, jittered
        backoff while everything else serves, and ``/readyz`` says Discord is not ready.
        """
        config = self._config
        self._previous_endpoints = point_discord_py_at(config.api_base, config.gateway_url)
        self._stopping = False
        self._was_ready = False
        self._first_login_done.clear()
        self._client = OutageClient(self, config)
        self._task = asyncio.create_task(self._stay_connected(), name="discord")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(config.start_wait_seconds):
                await self._first_login_done.wait()

    def on_ready(self) -> None:
        """The client's shards all have their guilds: serving."""
        self.problem = None
        self._was_ready = True
        log.info("Discord gateway ready")

    async def stop(self) -> None:
        """Close the gateway and HTTP session; safe to call more than once."""
        self._stopping = True
        if self._client is not None:
            await _close(self._client)
        if self._task is not None:
            self._task.cancel()  # it may be waiting out a backoff
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._previous_endpoints is not None:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._previous_endpoints
            self._previous_endpoints = None

    async def _stay_connected(self) -> None:
        attempt = 0
        while not self._stopping:
            client = self.client
            try:
                try:
                    await client.login(self._config.token)
                finally:
                    self._first_login_done.set()
                await client.connect(reconnect=True)  # resumes by itself on network trouble
                problem = "gateway closed"
            except discord.LoginFailure:  # the API answered 401
                await self._give_up_on_the_token(client)
                return
            except discord.ConnectionClosed as exc:
                if exc.code == GATEWAY_AUTHENTICATION_FAILED:
                    await self._give_up_on_the_token(client)
                    return
                problem = f"gateway closed ({exc.code})"
                log.error("Discord gateway closed with %s", exc.code)
            except _UNREACHABLE as exc:
                problem = f"API unreachable ({type(exc).__name__})"
            except Exception as exc:  # discord.py gave up, e.g. on an event it cannot parse
                problem = f"gateway failed ({type(exc).__name__})"
                log.error("Discord gateway stopped", exc_info=exc)
            if self._stopping:
                return
            if self._was_ready:
                attempt = 0  # it worked for a while: start the backoff over
            self._was_ready = False
            await _close(client)
            delay = self._backoff.delay(attempt)
            attempt += 1
            self.problem = f"{problem}; connecting again in {delay:.0f} s"
            log.warning("Discord %s", self.problem)
            await self._sleep(delay)
            if not self._stopping:
                self._client = OutageClient(self, self._config)

    async def _give_up_on_the_token(self, client: OutageClient) -> None:
        # Retrying a refused token only piles up failed logins; a new token needs a restart.
        self.problem = "token refused"
        log.error("Discord refused DISCORD_TOKEN; Discord stays off until it is fixed")
        await _close(client)
        self.gave_up.set()

    async def setup(self, client: OutageClient) -> None:
        """Called from setup_hook: the application id is known, the gateway not yet open."""
        for command in build_commands(
            self._deps.registry, invoke=self.handle_command, catalog=lambda: self._deps.catalog
        ):
            client.tree.add_command(command)
        try:
            await sync_if_changed(
                client.tree,
                dev_guild=self._config.dev_guild,
                state_file=self._config.commands_state_file,
            )
        except discord.HTTPException:
            # The previous commands stay registered; the next start tries again.
            log.exception("Discord command sync failed")

    async def handle_command(
        self, interaction: discord.Interaction, spec: CommandSpec, options: dict[str, str]
    ) -> None:
        """A slash command: check where it came from, then answer it."""
        if await self._refuse_outside_installed_guild(interaction):
            return
        await self._answer(interaction, Call(spec.name, options))

    async def handle_button(self, interaction: discord.Interaction, action: str) -> None:
        """An ``ob:`` button: its action is a command line, run as the user who clicked."""
        if await self._refuse_outside_installed_guild(interaction):
            return
        await self._answer(interaction, Line(action))

    async def handle_form(
        self, interaction: discord.Interaction, command_line: str, values: Mapping[str, str]
    ) -> None:
        """A submitted ``obf:`` modal: its command line plus the values, answered privately."""
        if await self._refuse_outside_installed_guild(interaction):
            return
        await self._answer(interaction, Submission(command_line, values), private=True)

    async def _refuse_outside_installed_guild(self, interaction: discord.Interaction) -> bool:
        if interaction.guild_id is None:
            text = DM_TEXT
        elif self.client.get_guild(interaction.guild_id) is None:
            text = NOT_INSTALLED_TEXT
        else:
            return False
        await self._respond(interaction, error_reply(text), deferred=False)
        return True

    async def _answer(
        self, interaction: discord.Interaction, source: Source, *, private: bool = False
    ) -> None:
        prepared = await self._pipeline.prepare(source, origin_of(interaction))
        if isinstance(prepared, Reply):  # a line that does not parse: answered at once
            await self._respond(interaction, prepared, deferred=False)
            return
        task = asyncio.create_task(self._pipeline.run(prepared))
        deferred = False
        try:
            wait = self._config.defer_after_seconds
            done = (await asyncio.wait({task}, timeout=wait))[0] if wait > 0 else set()
            if not done:
                await interaction.response.defer(thinking=True, ephemeral=private)
                deferred = True
            reply = await task
            if private:  # a form's answer: no modal from a modal, and only for the submitter
                reply = replace(reply, ephemeral=True, form=None)
            await self._respond(interaction, reply, deferred=deferred)
        except Exception as exc:
            task.cancel()
            if isinstance(exc, discord.NotFound) and exc.code == UNKNOWN_INTERACTION:
                # Past Discord's 3 s (e.g. replayed after a reconnect): nobody can be told now.
                log.warning("Discord interaction %s expired before it was answered", interaction.id)
                return
            log.exception("answering Discord interaction %s failed", interaction.id)
            await _send_failure(interaction, FAILURE_TEXT)

    async def _respond(
        self, interaction: discord.Interaction, reply: Reply, *, deferred: bool
    ) -> None:
        if reply.form is not None and not deferred:
            modal = render_form(reply.form)
            if modal is not None:
                await interaction.response.send_modal(modal)
                return
        message = render_reply(reply, self._clock())
        kwargs = _message_kwargs(message)
        if not deferred:
            await interaction.response.send_message(ephemeral=message.ephemeral, **kwargs)
        elif message.ephemeral:
            # A deferred answer is as public as its "thinking…" message; a private one replaces it.
            await interaction.delete_original_response()
            await interaction.followup.send(ephemeral=True, **kwargs)
        else:
            file = kwargs.pop("file", None)
            await interaction.edit_original_response(attachments=[file] if file else [], **kwargs)


def origin_of(interaction: discord.Interaction) -> Origin:
    """Who asked and where: the member, their server and the channel."""
    channel_id = _channel_id(interaction)
    return Origin(
        actor=actor_of(interaction),
        community_id=CommunityId(str(interaction.guild_id)),
        channel_id=ChannelId(str(channel_id)) if channel_id else None,
        raw=interaction,
    )


def actor_of(interaction: discord.Interaction) -> Actor:
    """Who clicked or typed: admins are members with Manage Server or Administrator."""
    permissions = interaction.permissions
    user = interaction.user
    return Actor(
        platform="discord",
        user_id=UserId(str(user.id)),
        display_name=user.display_name,
        is_admin=interaction.guild_id is not None
        and (permissions.manage_guild or permissions.administrator),
        roles=tuple(str(role.id) for role in getattr(user, "roles", ())),
    )


def _channel_id(interaction: discord.Interaction) -> int | None:
    client = interaction.client
    if isinstance(client, OutageClient):
        return client.channel_id_of(interaction)
    return interaction.channel_id


def _message_kwargs(message: DiscordMessage) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "embed": message.embed,
        "allowed_mentions": message.allowed_mentions,
    }
    if message.content:
        kwargs["content"] = message.content
    view = message.view()
    if view is not None:
        kwargs["view"] = view
    file = message.file()
    if file is not None:
        kwargs["file"] = file
    return kwargs


async def _send_failure(interaction: discord.Interaction, text: str) -> None:
    embed = discord.Embed(description=text, colour=0xE67E22)
    none = discord.AllowedMentions.none()
    try:
        if interaction.response.is_done():
            await interaction.followup.send(embed=embed, ephemeral=True, allowed_mentions=none)
        else:
            await interaction.response.send_message(
                embed=embed, ephemeral=True, allowed_mentions=none
            )
    except discord.HTTPException:
        log.warning("could not tell the user about a failure (interaction %s)", interaction.id)


async def _close(client: OutageClient) -> None:
    if client.is_closed():
        return
    # A client that never connected has no event queue yet; its HTTP session is closed by then.
    with contextlib.suppress(AttributeError):
        await client.close()
