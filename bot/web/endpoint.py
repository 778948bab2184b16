"""What every public page, API route and badge shares: rate limit, ETag, friendly errors."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from bot.core.timeutil import Clock
from bot.services.deps import AppDeps
from bot.settings import IPNetwork
from bot.web.layout import error_page
from bot.web.ratelimit import RateLimiter, client_address, retry_after_header

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Kind = Literal["json", "html", "svg"]


@dataclass(frozen=True, slots=True)
class WebContext:
    """What the public web routes need; built once by `create_web_app`."""

    deps: AppDeps
    clock: Clock
    limiter: RateLimiter | None
    trusted_proxies: tuple[IPNetwork, ...] = ()


WEB = web.AppKey("public_web", WebContext)


class ApiError(Exception):
    """A request we refuse, with a status and a message fit for the caller."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def json_bytes(payload: object) -> bytes:
    """Compact, key-sorted JSON: equal data gives equal bytes, hence equal ETags."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def error_response(status: int, code: str, message: str, kind: Kind = "json") -> web.Response:
    """An error in the endpoint's own format; never a traceback."""
    if kind == "json":
        body = json_bytes({"error": {"code": code, "message": message}})
        return web.Response(
            status=status,
            body=body,
            content_type="application/json",
            headers={"Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"},
        )
    if kind == "svg":
        return web.Response(
            status=status,
            text=message,
            content_type="text/plain",
            headers={"Cache-Control": "no-store"},
        )
    return web.Response(
        status=status,
        text=error_page(status, message),
        content_type="text/html",
        headers={"Cache-Control": "no-store"},
    )


def conditional(
    request: web.Request,
    body: bytes,
    *,
    content_type: str,
    cache_control: str,
    extra_headers: dict[str, str] | None = None,
) -> web.Response:
    """A 200 with a strong ETag over the body, or 304 when the client already has these bytes."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": cache_control, **(extra_headers or {})}
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=content_type, headers=headers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    # RFC 9110: If-None-Match uses the weak comparison, so W/"x" matches "x".
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def endpoint(kind: Kind) -> Callable[[Handler], Handler]:
    """Wrap a public handler: per-client rate limit first, and friendly errors after."""

    def wrap(handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            context = request.app[WEB]
            if context.limiter is not None:
                client = client_address(
                    request.remote,
                    request.headers.get("X-Forwarded-For"),
                    context.trusted_proxies,
                )
                wait = context.limiter.take(client)
                if wait > 0:
                    response = error_response(
                        429,
                        "rate_limited",
                        "Too many requests from your address. Please wait a moment and retry.",
                        kind,
                    )
                    response.headers["Retry-After"] = retry_after_header(wait)
                    return response
            try:
                return await handler(request)
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, kind)
            except web.HTTPException:
                raise
            except Exception:
                log.exception("%s %s failed", request.method, request.path)
                return error_response(
                    500,
                    "internal_error",
                    "Something went wrong on our side. Please try again in a minute.",
                    kind,
                )

        guarded.__name__ = handler.__name__
        guarded.__doc__ = handler.__doc__
        return guarded

    return wrap
