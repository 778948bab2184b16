"""The Discord adapter: a discord.py client whose every slash command and button ends in dispatch.

Interaction → `Invocation` → `dispatch` → `render_reply` → interaction response. Slash commands
arrive through an `app_commands.CommandTree` generated from the registry; ``ob:`` buttons arrive
in ``on_interaction`` and are matched by prefix alone, so they work on messages sent before a
restart. discord.py owns the gateway: heartbeats, reconnects, resumes and shards.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

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
from bot.core.commands import (
    Actor,
    CommandSpec,
    Invocation,
    Reply,
    UserFacingError,
    dispatch,
    error_reply,
    form_options,
)
from bot.core.textcommand import parse_command_line
from bot.core.timeutil import Clock
from bot.deps import AppDeps

log = logging.getLogger(__name__)

DM_TEXT = "I work inside servers: use my commands in a server channel where I'm installed."
NOT_INSTALLED_TEXT = (
    "I'm not installed in this server, so I can't answer here. "
    "Ask a server admin to add me (with the bot and applications.commands scopes)."
)
FAILURE_TEXT = "Something went wrong on our side. It has been logged; please try again."


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

    async def setup_hook(self) -> None:
        """Build the command tree from the registry and sync it when it changed."""
        await self.adapter.setup(self)

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

    def __init__(self, *, config: DiscordConfig, deps: AppDeps, clock: Clock) -> None:
        self._config = config
        self._deps = deps
        self._clock = clock
        self._client: OutageClient | None = None
        self._task: asyncio.Task[None] | None = None
        self._previous_endpoints: tuple[str, yarl.URL] | None = None

    @property
    def client(self) -> OutageClient:
        """The running discord.py client."""
        if self._client is None:
            raise RuntimeError("the Discord adapter is not started")
        return self._client

    @property
    def ready(self) -> bool:
        """Logged in and every shard of this process has received its guilds."""
        return self._client is not None and self._client.is_ready()

    async def start(self) -> None:
        """Log in (syncing commands if needed), then connect the gateway in the background."""
        config = self._config
        self._previous_endpoints = point_discord_py_at(config.api_base, config.gateway_url)
        self._client = OutageClient(self, config)
        try:
            await self._client.login(config.token)
        except BaseException:
            await self.stop()
            raise
        self._task = asyncio.create_task(self._client.connect(reconnect=True), name="discord")
        self._task.add_done_callback(_log_gateway_end)

    async def wait_until_ready(self) -> None:
        """Until every shard of this process has received its guilds."""
        await self.client.wait_until_ready()

    async def stop(self) -> None:
        """Close the gateway and HTTP session; safe to call more than once."""
        if self._client is not None and not self._client.is_closed():
            await self._client.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._previous_endpoints is not None:
            discord.http.Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = self._previous_endpoints
            self._previous_endpoints = None

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
        await self._answer(interaction, self._invocation(interaction, spec.name, options))

    async def handle_button(self, interaction: discord.Interaction, action: str) -> None:
        """An ``ob:`` button: its action is a command line, run as the user who clicked."""
        if await self._refuse_outside_installed_guild(interaction):
            return
        try:
            command, options = parse_command_line(self._deps.registry, action)
        except UserFacingError as exc:
            await self._respond(interaction, error_reply(*exc.text), deferred=False)
            return
        await self._answer(interaction, self._invocation(interaction, command, options))

    async def handle_form(
        self, interaction: discord.Interaction, command_line: str, values: Mapping[str, str]
    ) -> None:
        """A submitted ``obf:`` modal: its command line plus the values, answered privately."""
        if await self._refuse_outside_installed_guild(interaction):
            return
        try:
            command, options = form_options(self._deps.registry, command_line, values)
        except UserFacingError as exc:
            await self._respond(interaction, error_reply(*exc.text), deferred=False)
            return
        await self._answer(
            interaction, self._invocation(interaction, command, options), private=True
        )

    def _invocation(
        self, interaction: discord.Interaction, command: str, options: dict[str, str]
    ) -> Invocation:
        return Invocation(
            command=command,
            options=options,
            actor=actor_of(interaction),
            community_id=str(interaction.guild_id),
            channel_id=str(interaction.channel_id) if interaction.channel_id else None,
            raw=interaction,
        )

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
        self, interaction: discord.Interaction, invocation: Invocation, *, private: bool = False
    ) -> None:
        task = asyncio.create_task(
            dispatch(self._deps.registry, invocation, self._deps, self._clock())
        )
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
        except Exception:
            log.exception("answering Discord interaction %s failed", interaction.id)
            task.cancel()
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


def actor_of(interaction: discord.Interaction) -> Actor:
    """Who clicked or typed: admins are members with Manage Server or Administrator."""
    permissions = interaction.permissions
    user = interaction.user
    return Actor(
        platform="discord",
        user_id=str(user.id),
        display_name=user.display_name,
        is_admin=interaction.guild_id is not None
        and (permissions.manage_guild or permissions.administrator),
        roles=tuple(str(role.id) for role in getattr(user, "roles", ())),
    )


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


def _log_gateway_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("Discord gateway stopped", exc_info=error)
