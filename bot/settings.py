"""Typed settings read from the environment and an optional ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of outagebot. Each field is documented in README.md and .env.example."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./data/outagebot.db",
        description="SQLAlchemy async URL; SQLite by default, postgresql+asyncpg://… to scale out.",
    )
    web_host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    web_port: int = Field(default=8080, ge=0, le=65535, description="Port of the web server.")
    poll_interval_seconds: float = Field(
        default=30.0, gt=0, description="How often each status source is polled."
    )
    http_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Total timeout of one request to a status source."
    )
    http_max_body_bytes: int = Field(
        default=5_000_000, gt=0, description="Largest status payload accepted, in bytes."
    )
    catalog_path: Path | None = Field(
        default=None,
        description="A catalog TOML file to use instead of the built-in one.",
    )
    reminder_hours: float = Field(
        default=4.0,
        ge=0,
        description="Remind channels of an incident still open every N hours (0: never).",
    )
    allow_private_sources: bool = Field(
        default=False,
        description="Let /service add point at private or loopback addresses (intranet pages).",
    )
    console: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="Run the terminal console with `outagebot run`: auto = when stdin is a TTY.",
    )
    log_level: str = Field(default="INFO", description="Python logging level.")
    statuspage_webhook_secrets: SecretStr | None = Field(
        default=None,
        description="service-id:secret pairs, comma separated: POST /hooks/statuspage/<secret>.",
    )
    discord_token: SecretStr | None = Field(default=None, description="Discord bot token.")
    discord_api_base: str = Field(
        default="https://discord.com/api/v10",
        description="Discord REST API base URL (a proxy, or a fake in tests).",
    )
    discord_gateway_url: str = Field(
        default="wss://gateway.discord.gg",
        description="Discord gateway URL used when shards are given explicitly.",
    )
    discord_dev_guild: int | None = Field(
        default=None, description="Sync slash commands to this guild only (development)."
    )
    shard_count: int | None = Field(
        default=None, ge=1, description="Total Discord shards across all processes (unset: auto)."
    )
    shard_ids: str | None = Field(
        default=None, description="Comma-separated shard ids this process runs, e.g. 0,1."
    )
    slack_bot_token: SecretStr | None = Field(default=None, description="Slack bot token (xoxb-…).")
    slack_app_token: SecretStr | None = Field(
        default=None, description="Slack app-level token (xapp-…) for Socket Mode."
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None, description="Slack signing secret, for HTTP mode."
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack Web API base URL (a proxy, or a fake in tests).",
    )
    slack_command: str = Field(
        default="/outage", description="The one Slack slash command that carries every command."
    )
    slack_client_id: str | None = Field(
        default=None, description="Slack app client id, for multi-workspace OAuth installs."
    )
    slack_client_secret: SecretStr | None = Field(
        default=None, description="Slack app client secret, for multi-workspace OAuth installs."
    )
    public_url: str | None = Field(
        default=None,
        description="The bot's public base URL (Slack HTTP mode, OAuth redirects, images).",
    )

    @field_validator("log_level")
    @classmethod
    def _upper_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @field_validator(
        "discord_token",
        "slack_bot_token",
        "slack_app_token",
        "slack_signing_secret",
        "slack_client_secret",
        "statuspage_webhook_secrets",
    )
    @classmethod
    def _blank_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None or not value.get_secret_value().strip() else value

    @property
    def enabled_chat_platforms(self) -> list[str]:
        """Names of chat platforms whose credentials are configured."""
        platforms = []
        if self.discord_token:
            platforms.append("discord")
        if self.slack_bot_token and (self.slack_app_token or self.slack_signing_secret):
            platforms.append("slack")
        return platforms
