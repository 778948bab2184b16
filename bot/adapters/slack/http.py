"""HTTP mode: ``POST /slack/events`` on the bot's own aiohttp server.

Slack signs every request: ``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}`` with the signing
secret. slack_sdk's `SignatureVerifier` (what bolt's verification middleware uses) checks it in
constant time against a 5-minute window measured on our injected clock. A request that fails
gets 401 before bolt — or anything else — sees it; bodies are capped before they are read.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import Clock as SignatureClock
from slack_sdk.signature import SignatureVerifier

from bot.adapters.slack.app import SlackCommandApp
from bot.core.timeutil import Clock
from bot.web.body import read_capped

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
MAX_BODY_BYTES = 256 * 1024
"""Slack's own payloads (even view submissions) stay far below this."""
_KNOWN_KEYS = frozenset({"command", "type", "ssl_check"})
"""Slash commands carry ``command``; interaction payloads and events ``type``."""


class _VerifierClock(SignatureClock):
    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> float:
        return self._clock().timestamp()


class SlackHttpEndpoint:
    """Verifies, caps and forwards Slack's HTTP requests (commands, interactivity, events)."""

    def __init__(self, *, app: SlackCommandApp, signing_secret: str, clock: Clock) -> None:
        if not signing_secret.strip():
            raise ValueError("HTTP mode needs SLACK_SIGNING_SECRET")
        self._app = app
        self._verifier = SignatureVerifier(signing_secret, clock=_VerifierClock(clock))

    def routes(self) -> list[web.RouteDef]:
        """The routes to mount on the bot's web application."""
        return [web.post(EVENTS_PATH, self.handle)]

    def install(self, web_app: web.Application) -> None:
        """Mount ``POST /slack/events`` (before the application starts)."""
        web_app.router.add_routes(self.routes())

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One Slack request → 401 / 413 / 400, or bolt's answer."""
        raw = await read_capped(request, MAX_BODY_BYTES)
        if raw is None:
            return _error(413, "body too large")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return _error(400, "malformed body")
        if not self._verified(request, text):
            log.info("rejected a Slack request with a bad or stale signature")
            return _error(401, "invalid request")
        try:
            body = parse_body(text, request.content_type)
        except (ValueError, RecursionError):
            return _error(400, "malformed body")
        if not isinstance(body, dict) or not _KNOWN_KEYS.intersection(body):
            return _error(400, "not a Slack command, interaction or event")
        problem = payload_problem(body)
        if problem is not None:
            # Signed, so from Slack (or someone holding the secret), yet not what Slack sends.
            log.info("refused a signed but malformed Slack request: %s", problem)
            return _error(400, "malformed payload")
        try:
            # Handed over parsed: bolt's own parser takes any form body containing the word
            # "payload" (a command's text, say) for an interaction. With a parsed body bolt
            # wants its "socket_mode" label, which only tells it not to look for raw text.
            bolt_request = AsyncBoltRequest(
                body=body,
                query=request.query_string,
                headers={k.lower(): v for k, v in request.headers.items()},
                mode="socket_mode",
            )
        except Exception:  # bolt digs ids out of the body as it builds a request
            return _error(400, "malformed body")
        response = await self._app.dispatch(bolt_request)
        return await to_aiohttp_response(response)

    def _verified(self, request: web.Request, raw: str) -> bool:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or len(timestamp) > 12 or not signature:
            return False
        return self._verifier.is_valid(raw, timestamp, signature)


def parse_body(text: str, content_type: str) -> object:
    """A Slack body: JSON (events), a form with a JSON ``payload`` (interactions), or a form."""
    if content_type == "application/json" or text.startswith("{"):
        return json.loads(text)
    fields = dict(parse_qsl(text, keep_blank_values=True))
    if "payload" in fields:
        return json.loads(fields["payload"])
    return fields


_TEXT_FIELDS = frozenset(
    {
        "type", "id", "name", "team_id", "user_id", "channel_id", "enterprise_id", "event_id",
        "api_app_id", "trigger_id", "response_url", "action_id", "callback_id", "command",
        "thread_ts", "user_team", "context_team_id", "context_enterprise_id",
        "private_metadata", "challenge", "value", "block_id",
    }
)  # fmt: skip
"""Ids and text: a string when present."""
_TEXT_OR_OBJECT_FIELDS = frozenset({"team", "user", "channel", "enterprise"})
"""An id in events, an object ({"id": …}) in interactions."""
_OBJECT_FIELDS = frozenset(
    {"event", "view", "container", "message", "previous_message", "item", "assistant_thread",
     "state", "tokens"}
)  # fmt: skip
_LIST_OF_OBJECTS_FIELDS = frozenset({"authorizations", "actions", "response_urls"})
_MAX_DEPTH = 6


def payload_problem(body: dict[str, Any]) -> str | None:
    """What makes a parsed Slack payload unlike anything Slack sends; None when it is fine.

    bolt and our listeners dig ids out of these fields and trust their types; a wrong type
    would end in a 500 and a traceback instead of a plain refusal.
    """
    problem = _shape_problem(body, "", 0)
    if problem is not None:
        return problem
    kind = body.get("type")
    url = body.get("response_url")
    if url is not None and not str(url).startswith(("https://", "http://")):
        return "response_url is not a web address"
    if "command" in body and "type" not in body:
        missing = [f for f in ("command", "team_id", "user_id", "response_url") if not body.get(f)]
        return f"a slash command without {', '.join(missing)}" if missing else None
    if kind == "url_verification" and not isinstance(body.get("challenge"), str):
        return "url_verification without a challenge"
    if kind == "event_callback" and not isinstance(_dict(body, "event").get("type"), str):
        return "event_callback without an event type"
    if kind == "block_actions" and not (body.get("actions") and _dict(body, "user").get("id")):
        return "block_actions without actions or user"
    if kind in ("view_submission", "view_closed") and not (
        _dict(body, "view").get("type") and _dict(body, "user").get("id")
    ):
        return f"{kind} without a view or user"
    return None


def _shape_problem(node: dict[str, Any], where: str, depth: int) -> str | None:
    if depth > _MAX_DEPTH:
        return f"{where or 'body'} nested too deeply"
    for key, value in node.items():
        path = f"{where}.{key}" if where else str(key)
        if value is None:
            continue
        if key in _TEXT_FIELDS and not isinstance(value, str):
            return f"{path} is not a string"
        if key in _TEXT_OR_OBJECT_FIELDS and not isinstance(value, str | dict):
            return f"{path} is neither an id nor an object"
        if key in _OBJECT_FIELDS and not isinstance(value, dict):
            return f"{path} is not an object"
        if key in _LIST_OF_OBJECTS_FIELDS and not (
            isinstance(value, list) and all(isinstance(item, dict) for item in value)
        ):
            return f"{path} is not a list of objects"
        children = value if isinstance(value, list) else [value]
        if key in _TEXT_OR_OBJECT_FIELDS | _OBJECT_FIELDS | _LIST_OF_OBJECTS_FIELDS:
            for child in children:
                if isinstance(child, dict):
                    problem = _shape_problem(child, path, depth + 1)
                    if problem is not None:
                        return problem
    return None


def _dict(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    return value if isinstance(value, dict) else {}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
