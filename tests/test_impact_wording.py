"""An incident whose page states no impact (Statuspage's "none") reads "Unknown" everywhere
it is shown, never "None impact"; and the privacy text speaks of "your console user id"."""

from __future__ import annotations

from datetime import timedelta

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.console_render import render_reply
from bot.core.alert_render import AlertView, render_alert, render_digest
from bot.core.commands import CommandRegistry
from bot.services.deps import AppDeps
from bot.store.engine import session_factory
from bot.testing import TestAdapter
from bot.web.server import WebServer, create_web_app
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import make_poller
from tests.web_seed import NOW, calm_payload, github_payload, seed_catalog

FORBIDDEN = ("None impact", "None ·", "none, since", "Similar none", "your the")


def no_impact_payload() -> dict[str, object]:
    """GitHub's real incident, as a page that states no impact for it serves it."""
    data = github_payload()
    data["incidents"][0]["impact"] = "none"  # type: ignore[index]
    return data


def assert_no_none_impact(text: str) -> None:
    for wrong in FORBIDDEN:
        assert wrong not in text, f"{wrong!r} in:\n{text}"


async def test_an_incident_without_impact_reads_unknown_on_every_surface(
    engine: AsyncEngine,
) -> None:
    clock = FakeClock(NOW - timedelta(hours=1))
    async with FakeStatusServer() as pages, aiohttp.ClientSession() as http:
        pages.set_json(SUMMARY_PATH, calm_payload())
        pages.set_json("/calm" + SUMMARY_PATH, calm_payload())
        catalog = seed_catalog(pages)

        poller = await make_poller(engine, clock, catalog, http)
        await poller.poll_all()
        clock.now = NOW
        pages.set_json(SUMMARY_PATH, no_impact_payload())
        await poller.poll_all()
        deps = AppDeps(
            catalog=catalog, sessions=session_factory(engine), registry=load_cogs(CommandRegistry())
        )

        console = TestAdapter.of(
            deps, lambda: NOW, platform="console", user="console", community="console"
        )

        async def say(command: str, **options: str) -> str:
            reply = await console.invoke(command, options, channel="console")
            return render_reply(reply, NOW)

        status, history = (
            await say("status", service="github"),
            await say("history", service="github"),
        )
        assert "Unknown impact" in status
        assert "Unknown · " in history
        assert_no_none_impact(status + history + await say("privacy"))
        assert "your console user id" in await say("privacy")

        server = WebServer(
            create_web_app(
                clock=lambda: NOW,
                deps=AppDeps(catalog=catalog, sessions=deps.sessions, registry=CommandRegistry()),
            ),
            host="127.0.0.1",
            port=0,
        )
        await server.start()
        try:
            base = f"http://127.0.0.1:{server.bound_port}"
            async with (
                http.get(base + "/") as overview,
                http.get(base + "/service/github") as page,
            ):
                html = await overview.text() + await page.text()
        finally:
            await server.stop()
    assert html.count("Unknown impact") >= 2  # the overview line and the incident's header
    assert "· Unknown ·" in html  # the history list
    assert_no_none_impact(html)


def test_alerts_and_digests_say_unknown_for_no_stated_impact() -> None:
    alert = AlertView(
        service_id="github",
        service_name="GitHub",
        kind="incident",
        title="Incident with Packages",
        status="investigating",
        impact="none",
        url=None,
        components=(),
        latest_update="Looking into it",
        latest_update_at=NOW,
        started_at=NOW,
        resolved_at=None,
    )
    text = render_reply(render_alert(alert), NOW) + render_reply(render_digest([alert, alert]), NOW)
    assert "Unknown" in text
    assert "unknown-impact, since" in text
    assert_no_none_impact(text)
