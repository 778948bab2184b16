"""A ready Slack app manifest for the current settings (``outagebot slack-manifest``)."""

from __future__ import annotations

from typing import Any

from bot.adapters.slack.http import EVENTS_PATH
from bot.adapters.slack.oauth import REDIRECT_PATH
from bot.settings import Settings

APP_NAME = "outagebot"
DESCRIPTION = "Tells your workspace when AI providers are down, with facts instead of panic."
LONG_DESCRIPTION = (
    "outagebot watches the official status pages of OpenAI, Anthropic, Google Gemini, Mistral and "
    "other services your team depends on. Ask it with /outage status, or subscribe a channel to "
    "alerts that are edited in place as an incident develops, with a thread of official updates "
    "and the final duration once it is resolved."
)
BOT_SCOPES = (
    "commands",  # the /outage slash command
    "chat:write",  # alerts and answers
    "chat:write.public",  # alerts in public channels the bot was not invited to
    "channels:history",  # find_sent: our own recent alerts in public channels, after a crash
    "groups:history",  # the same in private channels the bot was invited to
    "users:read",  # users.info: admin and owner rights for admin commands
)
CHART_UPLOAD_SCOPE = "files:write"  # charts as file uploads when there is no PUBLIC_URL
ADMIN_GROUP_SCOPE = "usergroups:read"  # usergroups.users.list for SLACK_ADMIN_GROUP
BOT_EVENTS = ("app_uninstalled", "tokens_revoked")
USAGE_HINT = "status [service] · help [command]"


def scopes_for(settings: Settings) -> list[str]:
    """The bot scopes the current settings need."""
    scopes = list(BOT_SCOPES)
    if not settings.public_url:
        scopes.append(CHART_UPLOAD_SCOPE)
    if settings.slack_admin_group:
        scopes.append(ADMIN_GROUP_SCOPE)
    return scopes


def build_manifest(settings: Settings) -> dict[str, Any]:
    """The manifest: display info, the slash command, scopes, interactivity, events, mode.

    Socket Mode when ``SLACK_APP_TOKEN`` is set, or when there is no ``PUBLIC_URL`` to receive
    HTTP requests at; otherwise request URLs point at ``PUBLIC_URL/slack/events``.
    """
    socket_mode = settings.slack_app_token is not None or not settings.public_url
    request_url = None if socket_mode else f"{(settings.public_url or '').rstrip('/')}{EVENTS_PATH}"
    command: dict[str, Any] = {
        "command": "/" + settings.slack_command.strip().lstrip("/"),
        "description": "Is it down? Status of AI providers and more",
        "usage_hint": USAGE_HINT,
        "should_escape": False,
    }
    interactivity: dict[str, Any] = {"is_enabled": True}
    events: dict[str, Any] = {"bot_events": list(BOT_EVENTS)}
    if request_url is not None:
        command["url"] = request_url
        interactivity["request_url"] = request_url
        events["request_url"] = request_url
    oauth: dict[str, Any] = {"scopes": {"bot": scopes_for(settings)}}
    if settings.public_url and settings.slack_client_id:
        # Multi-workspace installs: Slack sends the installing browser back here.
        oauth["redirect_urls"] = [settings.public_url.rstrip("/") + REDIRECT_PATH]
    return {
        "_metadata": {"major_version": 1, "minor_version": 1},
        "display_information": {
            "name": APP_NAME,
            "description": DESCRIPTION,
            "long_description": LONG_DESCRIPTION,
            "background_color": "#1f2937",
        },
        "features": {
            "bot_user": {"display_name": APP_NAME, "always_online": True},
            "slash_commands": [command],
        },
        "oauth_config": oauth,
        "settings": {
            "event_subscriptions": events,
            "interactivity": interactivity,
            "org_deploy_enabled": False,
            "socket_mode_enabled": socket_mode,
            "token_rotation_enabled": False,
        },
    }
