"""The admin API for outgoing webhooks over real HTTP, checked against bot/web/openapi.json."""

from __future__ import annotations

import aiohttp

from bot.web import webhook_api
from bot.web.server import WebServer, create_web_app
from tests.test_webhooks_out import Rig, conforms, rig, strict_rig

__all__ = ["rig", "strict_rig"]  # fixtures shared with test_webhooks_out


async def test_admin_api(rig: Rig) -> None:
    web_app = create_web_app(clock=rig.clock)
    policy = rig.deps.webhook_policy
    assert policy is not None
    webhook_api.install(
        web_app,
        webhook_api.WebhookApi(
            sessions=rig.deps.sessions,
            catalog=rig.deps.catalog,
            clock=rig.clock,
            policy=policy,
            admin_token="admin-token-for-tests",
        ),
    )
    server = WebServer(web_app, host="127.0.0.1", port=0)
    await server.start()
    base = f"http://127.0.0.1:{server.bound_port}/api/v1/webhooks"

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

    try:
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
    finally:
        await server.stop()
    assert await rig.targets() == []


async def test_admin_api_refuses_private_targets(strict_rig: Rig) -> None:
    web_app = create_web_app(clock=strict_rig.clock)
    assert strict_rig.deps.webhook_policy is not None
    webhook_api.install(
        web_app,
        webhook_api.WebhookApi(
            sessions=strict_rig.deps.sessions,
            catalog=strict_rig.deps.catalog,
            clock=strict_rig.clock,
            policy=strict_rig.deps.webhook_policy,
            admin_token="t0ken-for-tests",
        ),
    )
    server = WebServer(web_app, host="127.0.0.1", port=0)
    await server.start()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"http://127.0.0.1:{server.bound_port}/api/v1/webhooks",
                json={"url": "http://169.254.169.254/latest", "services": ["claude"]},
                headers={"Authorization": "Bearer t0ken-for-tests"},
            ) as response,
        ):
            assert response.status == 422
            assert "private network" in (await response.json())["error"]["message"]
    finally:
        await server.stop()
    assert await strict_rig.targets() == []
