"""Discord: slash commands, embeds and buttons (adapter) and outbox delivery (sender)."""

from __future__ import annotations

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # discord.py imports audioop for voice, which we never use; Python 3.11+ warns about it,
    # and the test suite turns warnings into errors. Import it once here, quietly.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from sqlalchemy.engine import make_url

from bot.adapters.discord.adapter import DiscordAdapter, DiscordConfig
from bot.core.timeutil import Clock
from bot.errors import ConfigError
from bot.services.deps import AppDeps
from bot.settings import Settings

__all__ = ["DiscordAdapter", "DiscordConfig", "create_discord_adapter", "discord_config"]

COMMANDS_STATE_FILE = "discord_commands.sha256"


def data_dir(settings: Settings) -> Path:
    """Where small state files live: beside the SQLite database, or ./data."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent
    return Path("data")


def parse_shard_ids(text: str | None) -> tuple[int, ...] | None:
    """``"0,1"`` → (0, 1); unset → None (all shards)."""
    if text is None or not text.strip():
        return None
    try:
        ids = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"SHARD_IDS must be comma-separated numbers, not {text!r}") from None
    return ids or None


def discord_config(settings: Settings) -> DiscordConfig:
    """The adapter's configuration from settings; ConfigError when it cannot work."""
    if settings.discord_token is None:
        raise ConfigError("DISCORD_TOKEN is not set")
    shard_ids = parse_shard_ids(settings.shard_ids)
    if shard_ids is not None and settings.shard_count is None:
        raise ConfigError("SHARD_IDS needs SHARD_COUNT (the total across all processes)")
    if shard_ids and settings.shard_count and max(shard_ids) >= settings.shard_count:
        raise ConfigError("every SHARD_IDS entry must be below SHARD_COUNT")
    return DiscordConfig(
        token=settings.discord_token.get_secret_value(),
        api_base=settings.discord_api_base,
        gateway_url=settings.discord_gateway_url,
        dev_guild=settings.discord_dev_guild,
        shard_count=settings.shard_count,
        shard_ids=shard_ids,
        commands_state_file=data_dir(settings) / COMMANDS_STATE_FILE,
    )


def create_discord_adapter(settings: Settings, deps: AppDeps, clock: Clock) -> DiscordAdapter:
    """The Discord adapter for the composition root (call only when DISCORD_TOKEN is set)."""
    return DiscordAdapter(config=discord_config(settings), deps=deps, clock=clock)
