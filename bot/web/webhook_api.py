"""Admin API for outgoing webhooks: ``POST/GET /api/v1/webhooks``, ``DELETE …/{id}``.

Guarded by ``API_ADMIN_TOKEN`` (``Authorization: Bearer …``, compared in constant time);
without it the routes do not exist. Each client shares the public routes' rate limit, and after
a few wrong tokens a minute it gets only 429s. The operator sees and removes every target;
targets created here belong to the owner ``api``, whose disabled-target notices go to the log.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.alerts import SEVERITIES
from bot.core.timeutil import Clock, format_timestamp
from bot.delivery.webhook_payload import new_secret
from bot.net.webhook_address import WebhookAddressError, WebhookPolicy, resolve_target
from bot.sources.catalog import Catalog
from bot.store import alert_store, webhook_store
from bot.store.webhook_models import API_OWNER, WebhookTargetRow
from bot.web.body import read_capped
from bot.web.endpoint import WEB
from bot.web.ratelimit import RateLimiter, client_address, retry_after_header

log = logging.getLogger(__name__)

MAX_SERVICES = 50
MAX_COMPONENTS = 20


@dataclass(frozen=True, slots=True)
class WebhookApi:
    """What the admin API needs."""

    sessions: async_sessionmaker[AsyncSession]
    catalog: Catalog
    clock: Clock
    policy: WebhookPolicy
    admin_token: str


API = web.AppKey("webhook_api", WebhookApi)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


BAD_TOKENS = web.AppKey("webhook_api_bad_tokens", RateLimiter)
BAD_TOKENS_PER_MINUTE = 5
"""Wrong tokens a client may send a minute before every answer to it is 429, right or wrong."""
MAX_BODY_BYTES = 64 * 1024


def install(app: web.Application, api: WebhookApi) -> None:
    """Mount the routes."""
    app[API] = api
    app[BAD_TOKENS] = RateLimiter(per_minute=BAD_TOKENS_PER_MINUTE, clock=api.clock)
    app.router.add_post("/api/v1/webhooks", _guarded(create_webhook))
    app.router.add_get("/api/v1/webhooks", _guarded(list_webhooks))
    app.router.add_delete("/api/v1/webhooks/{id}", _guarded(delete_webhook))


class _BadRequest(Exception):
    def __init__(self, message: str, status: int = 400, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.code = status, code


def _error(
    code: str, message: str, status: int, headers: dict[str, str] | None = None
) -> web.Response:
    # The same shape as the public API's errors (bot/web/openapi.json, "Error").
    body = {"error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        # The public routes' limiter and proxy list, when the app has them (bot.web.server).
        public = request.app.get(WEB)
        client = client_address(
            request.remote,
            request.headers.get("X-Forwarded-For"),
            public.trusted_proxies if public is not None else (),
        )
        bad_tokens = request.app[BAD_TOKENS]
        # Checked before the token is: once the budget is spent, a right guess looks the same.
        wait = bad_tokens.wait(client)
        if wait == 0 and public is not None and public.limiter is not None:
            wait = public.limiter.take(client)
        if wait > 0:
            return _error(
                "rate_limited",
                "Too many requests from your address. Please wait a moment and retry.",
                429,
                {"Retry-After": retry_after_header(wait)},
            )
        given = request.headers.get("Authorization", "")
        expected = "Bearer " + request.app[API].admin_token
        if not hmac.compare_digest(given.encode(), expected.encode()):
            bad_tokens.take(client)
            return _error(
                "unauthorized", "missing or wrong admin token", 401, {"WWW-Authenticate": "Bearer"}
            )
        try:
            return await handler(request)
        except _BadRequest as exc:
            return _error(exc.code, str(exc), exc.status)

    return guarded


async def create_webhook(request: web.Request) -> web.StreamResponse:
    """Create (or extend) an API-owned target; the answer shows its secret when it is new."""
    api = request.app[API]
    raw = await read_capped(request, MAX_BODY_BYTES)
    if raw is None:
        raise _BadRequest("the body is too large", status=413, code="too_large")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _BadRequest("the body must be a JSON object")
    url = body.get("url")
    if not isinstance(url, str):
        raise _BadRequest("url is required: the https:// address to deliver to")
    services = _strings(body.get("services"), "services", MAX_SERVICES)
    if not services:
        raise _BadRequest('services is required: a list of service ids, e.g. ["openai"]')
    unknown = [s for s in services if api.catalog.get(s) is None]
    if unknown:
        raise _BadRequest(f"unknown service id: {unknown[0][:64]}", code="unknown_service")
    components = _strings(body.get("components", []), "components", MAX_COMPONENTS)
    severity = body.get("min_severity", "minor")
    if severity not in SEVERITIES:
        raise _BadRequest(f"min_severity must be one of: {', '.join(SEVERITIES)}")
    maintenance, early = body.get("maintenance", True), body.get("early_warnings", False)
    if not isinstance(maintenance, bool) or not isinstance(early, bool):
        raise _BadRequest("maintenance and early_warnings must be true or false")
    try:
        parts, _ = await resolve_target(url, api.policy)
    except WebhookAddressError as exc:
        raise _BadRequest(str(exc), status=422, code="refused_address") from None
    now = api.clock()
    async with api.sessions() as session:
        target, created = await webhook_store.add_target(
            session=session,
            owner_platform=API_OWNER,
            owner_community=API_OWNER,
            url=parts.geturl(),
            secret=new_secret(),
            notice_channel_id=None,
            now=now,
        )
        for service_id in services:
            subscription = await webhook_store.subscribe_target(
                session=session,
                target=target,
                service_id=service_id,
                components=components,
                min_severity=str(severity),
                maintenance=maintenance,
                now=now,
                early_warnings=early,
            )
            await alert_store.stage_open_alerts(session=session, subscription=subscription, now=now)
        await session.commit()
        shown = await _shown(session, target, with_secret=created)
    log.info("webhook %s %s through the admin API", target.id, "created" if created else "updated")
    return web.json_response(shown, status=201 if created else 200)


async def list_webhooks(request: web.Request) -> web.StreamResponse:
    """Every target (secrets are never shown again)."""
    async with request.app[API].sessions() as session:
        targets = await webhook_store.list_targets(session=session)
        shown = [await _shown(session, t, with_secret=False) for t in targets]
    return web.json_response({"webhooks": shown})


async def delete_webhook(request: web.Request) -> web.StreamResponse:
    """Remove a target and its subscriptions."""
    try:
        target_id = int(request.match_info["id"])
    except ValueError:
        raise _BadRequest("the webhook id must be a number") from None
    async with request.app[API].sessions() as session:
        target = await session.get(WebhookTargetRow, target_id)
        if target is None:
            raise _BadRequest("no webhook with that id", status=404, code="not_found")
        await webhook_store.remove_target(session=session, target=target)
        await session.commit()
    log.info("webhook %s removed through the admin API", target_id)
    return web.Response(status=204)


def _strings(value: object, name: str, limit: int) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _BadRequest(f"{name} must be a list of strings")
    if len(value) > limit:
        raise _BadRequest(f"{name} may hold at most {limit} entries")
    return list(dict.fromkeys(v.strip()[:200] for v in value if v.strip()))


async def _shown(
    session: AsyncSession, target: WebhookTargetRow, *, with_secret: bool
) -> dict[str, object]:
    shown: dict[str, object] = {
        "id": target.id,
        "url": target.url,
        "owner": f"{target.owner_platform}:{target.owner_community}",
        "services": await webhook_store.target_services(session=session, target=target),
        "enabled": target.enabled,
        "disabled_reason": target.disabled_reason,
        "consecutive_failures": target.consecutive_failures,
        "created_at": format_timestamp(target.created_at),
        "last_success_at": format_timestamp(target.last_success_at),
    }
    if with_secret:
        shown["secret"] = target.secret
    return shown
