"""The generated Slack app manifest follows the settings."""

from __future__ import annotations

import json

from bot.adapters.slack.manifest import build_manifest
from bot.settings import Settings


def test_socket_mode_manifest_has_no_request_urls() -> None:
    manifest = build_manifest(
        Settings(_env_file=None, slack_app_token="xapp-1", slack_command="/outage")
    )
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "request_url" not in json.dumps(manifest)
    command = manifest["features"]["slash_commands"][0]
    assert command["command"] == "/outage"
    assert "status" in command["usage_hint"]
    assert manifest["settings"]["interactivity"] == {"is_enabled": True}
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    for scope in ("commands", "chat:write", "channels:history", "users:read"):
        assert scope in scopes


def test_http_mode_manifest_points_at_the_public_url() -> None:
    manifest = build_manifest(
        Settings(
            _env_file=None,
            slack_signing_secret="s",
            public_url="https://bot.example.com/",
            slack_command="ai-status",
        )
    )
    url = "https://bot.example.com/slack/events"
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is False
    assert settings["interactivity"]["request_url"] == url
    assert settings["event_subscriptions"]["request_url"] == url
    assert settings["event_subscriptions"]["bot_events"] == ["app_uninstalled", "tokens_revoked"]
    command = manifest["features"]["slash_commands"][0]
    assert (command["command"], command["url"]) == ("/ai-status", url)
    assert "redirect_urls" not in manifest["oauth_config"]  # no SLACK_CLIENT_ID: no installs
    assert "files:write" not in manifest["oauth_config"]["scopes"]["bot"]  # charts by URL


def test_installs_and_an_admin_group_add_the_redirect_url_and_scopes() -> None:
    manifest = build_manifest(
        Settings(
            _env_file=None,
            slack_signing_secret="s",
            slack_client_id="111.222",
            slack_admin_group="oncall",
            public_url="https://bot.example.com",
        )
    )
    oauth = manifest["oauth_config"]
    assert oauth["redirect_urls"] == ["https://bot.example.com/slack/oauth_redirect"]
    assert "usergroups:read" in oauth["scopes"]["bot"]


def test_without_a_public_url_charts_are_uploaded_so_files_write_is_asked() -> None:
    manifest = build_manifest(Settings(_env_file=None, slack_app_token="xapp-1"))
    assert "files:write" in manifest["oauth_config"]["scopes"]["bot"]


def test_without_a_public_url_the_manifest_falls_back_to_socket_mode() -> None:
    manifest = build_manifest(Settings(_env_file=None, slack_signing_secret="s"))
    assert manifest["settings"]["socket_mode_enabled"] is True


def test_display_information_fits_slack_limits() -> None:
    info = build_manifest(Settings(_env_file=None))["display_information"]
    assert len(info["name"]) <= 35
    assert len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
