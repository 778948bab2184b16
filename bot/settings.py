"""Typed settings read from the environment and an optional ``.env`` file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


MIN_ADMIN_TOKEN = 32
"""Characters of API_ADMIN_TOKEN at the least: too many to guess through the rate limit."""


class Settings(BaseSettings):
    """Every knob of outagebot. Each field is documented in README.md and .env.example."""

    # Errors never quote the value: it may be a token (a short API_ADMIN_TOKEN, say).
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    database_url: str = Field(
        default="sqlite+aiosqlite:///./data/outagebot.db",
        description="SQLAlchemy async URL; SQLite by default, postgresql+asyncpg://… to scale out.",
    )
    web_host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    web_port: int = Field(default=8080, ge=0, le=65535, description="Port of the web server.")
    api_rate_limit_per_minute: int = Field(
        default=120,
        ge=0,
        description="Requests a minute each client address may make to the dashboard, API and "
        "badges (0: no limit).",
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Comma-separated proxy addresses or networks whose X-Forwarded-For is "
        "believed (unset: the peer address is the client).",
    )
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
    shutdown_timeout_seconds: float = Field(
        default=8.0,
        gt=0,
        description="The whole shutdown after SIGTERM finishes within N seconds (below Docker's "
        "stop grace period).",
    )
    leader_retry_seconds: float = Field(
        default=3.0,
        gt=0,
        description="PostgreSQL: how often a standby process tries to become the poller.",
    )
    retention_report_days: float = Field(
        default=30.0,
        ge=8,
        description="Delete crowd reports older than N days (at least 8: the crowd baseline).",
    )
    retention_delivery_days: float = Field(
        default=14.0,
        gt=0,
        description="Delete sent deliveries of incidents resolved more than N days ago.",
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
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as readable text, or one JSON object per line."
    )
    metrics_host: str | None = Field(
        default=None,
        description="Serve /metrics on this address instead of the main web server.",
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Port of the separate /metrics server."
    )
    api_admin_token: SecretStr | None = Field(
        default=None,
        description="Bearer token (32+ characters) for the admin API (/api/v1/webhooks); "
        "unset: API disabled.",
    )
    allow_private_webhooks: bool = Field(
        default=False,
        description="Let outgoing webhooks target private or loopback addresses (intranet).",
    )
    webhook_max_failures: int = Field(
        default=5,
        ge=1,
        description="Disable an outgoing webhook after N failed deliveries in a row.",
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Total timeout of one outgoing webhook request."
    )
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
    slack_admin_group: str | None = Field(
        default=None,
        max_length=100,
        description="Slack user group (id S… or handle) whose members may run admin commands.",
    )
    public_url: str | None = Field(
        default=None,
        description="The bot's public base URL (Slack HTTP mode, OAuth redirects, images).",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str | None) -> str | None:
        parse_trusted_proxies(value)  # a typo fails at start, not on the first request
        return value

    @field_validator("api_admin_token")
    @classmethod
    def _long_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A short token can be guessed over the network; blank stays "unset" (_blank_is_unset).
        token = value.get_secret_value().strip() if value is not None else ""
        if token and len(token) < MIN_ADMIN_TOKEN:
            raise ValueError(
                f"must be at least {MIN_ADMIN_TOKEN} characters; make one with: "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return value

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
        "api_admin_token",
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
        slack_installs = bool(self.slack_client_id and self.slack_client_secret)
        if (self.slack_bot_token or slack_installs) and (
            self.slack_app_token or self.slack_signing_secret
        ):
            platforms.append("slack")
        return platforms


def parse_trusted_proxies(text: str | None) -> tuple[IPNetwork, ...]:
    """Addresses or networks (``10.0.0.0/8``), comma separated; ValueError names a bad entry."""
    networks = []
    for raw in (text or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or network: {entry!r}") from None
    return tuple(networks)


def parse_webhook_secrets(text: str) -> dict[str, str]:
    """``service-id:secret, …`` → {service id: secret}; errors name the pair, never the secret."""
    pairs: dict[str, str] = {}
    for index, item in enumerate(part.strip() for part in text.split(",")):
        if not item:
            continue
        service_id, sep, secret = item.partition(":")
        if not sep or not service_id.strip() or len(secret.strip()) < 16:
            raise ValueError(
                f"STATUSPAGE_WEBHOOK_SECRETS entry {index + 1} must be service-id:secret "
                "with a secret of at least 16 characters"
            )
        pairs[service_id.strip()] = secret.strip()
    return pairs
