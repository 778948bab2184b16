"""The admin API for outgoing webhooks over real HTTP, checked against bot/web/openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from bot.web import webhook_api
from bot.web.server import WebServer, create_web_app
from tests.helpers import post_json
from tests.openapi_check import conforms
from tests.webhooks_rig import Rig, build_rig

rig = pytest.fixture(build_rig(allow_private=True))
strict_rig = pytest.fixture(build_rig(allow_private=False))

LONG_TOKEN = "admin-token-for-tests-0123456789abcdef"


async def test_admin_api(rig: Rig) -> None:
    async def call(
        method: str, path: str = "", *, token: str | None = "admin-token-for-tests", **kw: object
    ) -> tuple[int, object]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.request(method, base + path, headers=headers, **kw) as response,  # type: ignore[arg-type]
        ):
            answer = await response.json() if response.status != 204 else None
        if response.status >= 400:
            conforms(answer, "AdminError")  # every refusal in the documented shape
        return response.status, answer

    async with admin_server(rig, token="admin-token-for-tests") as base:
        assert (await call("GET", token=None))[0] == 401
        assert (await call("GET", token="nope"))[0] == 401
        assert (await call("POST", data=b"{not json"))[0] == 400
        status, refusal = await call("POST", json={"url": rig.receiver.url(), "services": ["x"]})
        assert status == 400
        assert refusal == {"error": {"code": "unknown_service", "message": "unknown service id: x"}}
        assert (await call("POST", json={"url": rig.receiver.url(), "services": "claude"}))[
            0
        ] == 400
        assert (await call("POST", json={"services": ["claude"]}))[0] == 400
        body = {"url": rig.receiver.url(), "services": ["claude"], "min_severity": "major"}
        status, created = await call("POST", json=body)
        assert status == 201
        conforms(created, "Webhook")
        assert isinstance(created, dict)
        assert created["secret"].startswith("whsec_")
        assert created["services"] == ["claude"]
        status, extended = await call("POST", json={**body, "services": ["gemini"]})
        assert status == 200
        conforms(extended, "Webhook")
        assert isinstance(extended, dict)
        assert "secret" not in extended
        status, listing = await call("GET")
        conforms(listing, "WebhookList")
        assert isinstance(listing, dict)
        [listed] = listing["webhooks"]
        assert listed["services"] == ["claude", "gemini"]
        assert "secret" not in listed
        await rig.outage(minutes=30)
        await rig.drain()
        assert len(rig.receiver.received) == 2  # claude and gemini, one alert each
        assert (await call("DELETE", f"/{created['id']}"))[0] == 204
        assert (await call("DELETE", f"/{created['id']}"))[0] == 404
        assert (await call("DELETE", "/abc"))[0] == 400
    assert await rig.targets() == []


async def test_admin_api_refuses_private_targets(strict_rig: Rig) -> None:
    async with admin_server(strict_rig, token="t0ken-for-tests") as url:
        body = {"url": "http://169.254.169.254/latest", "services": ["claude"]}
        status, answer = await post_json(url, body, token="t0ken-for-tests")
    assert status == 422
    assert "private network" in answer["error"]["message"]
    assert await strict_rig.targets() == []


@asynccontextmanager
async def admin_server(
    rig: Rig, *, token: str = LONG_TOKEN, **web_options: Any
) -> AsyncIterator[str]:
    """The admin API mounted on the bot's web application (public limiter, trusted proxies)."""
    web_app = create_web_app(clock=rig.clock, deps=rig.deps, **web_options)
    assert rig.deps.webhook_policy is not None
    webhook_api.install(
        web_app,
        webhook_api.WebhookApi(
            sessions=rig.deps.sessions,
            catalog=rig.deps.catalog,
            clock=rig.clock,
            policy=rig.deps.webhook_policy,
            admin_token=token,
        ),
    )
    server = WebServer(web_app, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.bound_port}/api/v1/webhooks"
    finally:
        await server.stop()


async def get_list(url: str, token: str, client: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    if client is not None:
        headers["X-Forwarded-For"] = client
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as response:
        answer = await response.json()
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
        return response.status, answer


async def test_wrong_tokens_are_answered_429_after_a_small_budget(rig: Rig) -> None:
    async with admin_server(rig, trusted_proxies="127.0.0.1") as url:
        guesser, admin = "198.51.100.7", "203.0.113.9"
        for _ in range(5):  # the budget: five wrong tokens a minute
            assert (await get_list(url, "guess", guesser))[0] == 401
        status, refusal = await get_list(url, "another-guess", guesser)
        assert status == 429
        conforms(refusal, "AdminError")
        # Even the right token: the guesser cannot tell a right guess from a wrong one.
        assert (await get_list(url, LONG_TOKEN, guesser))[0] == 429
        # The operator, from another address, is not held up.
        assert (await get_list(url, LONG_TOKEN, admin))[0] == 200
        rig.clock.advance(minutes=1)
        assert (await get_list(url, LONG_TOKEN, guesser))[0] == 200


async def test_the_admin_api_shares_the_public_per_client_rate_limit(rig: Rig) -> None:
    async with admin_server(rig, rate_limit_per_minute=3, trusted_proxies="127.0.0.1") as url:
        for _ in range(3):
            assert (await get_list(url, LONG_TOKEN, "198.51.100.7"))[0] == 200
        status, refusal = await get_list(url, LONG_TOKEN, "198.51.100.7")
        assert status == 429
        assert refusal["error"]["code"] == "rate_limited"
        assert (await get_list(url, LONG_TOKEN, "203.0.113.9"))[0] == 200


async def test_an_admin_body_over_the_cap_is_refused(rig: Rig) -> None:
    async with admin_server(rig) as url, aiohttp.ClientSession() as http:
        body = b'{"url": "' + b"x" * 64 * 1024 + b'"}'
        headers = {"Authorization": f"Bearer {LONG_TOKEN}", "Content-Type": "application/json"}
        async with http.post(url, data=body, headers=headers) as response:
            assert response.status == 413
            conforms(await response.json(), "AdminError")
