"""Multi-workspace installs end to end: the browser's OAuth round trip against the bot's real
routes, Slack's side played by the fake (oauth.v2.access), then signed commands, outbox deliveries
and uninstall events for the installed workspace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from aiohttp import web
from slack_sdk.oauth.installation_store.models.installation import Installation
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select
from yarl import URL

from bot.adapters.slack import SlackAdapter, create_slack_adapter
from bot.adapters.slack.app import UNKNOWN_TEAM_TEXT
from bot.app import App, open_app
from bot.core.commands import Reply
from bot.core.events import DetectionEvent, EventKind
from bot.delivery.sender import ChannelRef, PermanentDeliveryError
from bot.delivery.worker import OutboxWorker
from bot.settings import Settings
from bot.store import alert_store
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.slack_install_models import SlackInstallationRow, SlackOAuthStateRow
from bot.store.slack_install_store import (
    SlackInstallationStore,
    SlackOAuthStateStore,
    remove_workspace,
)
from tests.conftest import FakeClock
from tests.fakes.slack_server import CLIENT_ID, CLIENT_SECRET, FakeSlack, Grant
from tests.helpers import write_catalog
from tests.slack_harness import SECRET, signature, slash_command_body

PUBLIC = "https://bot.example.com"
TEAM, OTHER = "T222", "T333"
TOKEN = "xoxb-team-two"


@dataclass
class Rig:
    slack: FakeSlack
    app: App
    adapter: SlackAdapter
    clock: FakeClock
    base: str
    browser: aiohttp.ClientSession

    async def start_install(self) -> str:
        """GET /slack/install; returns the state Slack would send back."""
        async with self.browser.get(self.base + "/slack/install", allow_redirects=False) as r:
            assert r.status == 302
            location = urlsplit(r.headers["Location"])
        assert (location.netloc, location.path) == ("slack.com", "/oauth/v2/authorize")
        query = parse_qs(location.query)
        assert query["client_id"] == [CLIENT_ID]
        assert query["redirect_uri"] == [PUBLIC + "/slack/oauth_redirect"]
        assert "commands" in query["scope"][0].split(",")
        return query["state"][0]

    async def finish(self, **query: str) -> tuple[int, str]:
        """Slack sends the browser back to GET /slack/oauth_redirect."""
        url = self.base + "/slack/oauth_redirect?" + urlencode(query)
        async with self.browser.get(url, allow_redirects=False) as response:
            assert response.content_type == "text/html"
            return response.status, await response.text()

    async def install(self, team: str = TEAM, token: str = TOKEN, name: str = "Team Two") -> str:
        self.slack.grants[f"code-{team}"] = Grant(team_id=team, team_name=name, bot_token=token)
        state = await self.start_install()
        status, page = await self.finish(code=f"code-{team}", state=state)
        assert status == 200, page
        return page

    async def signed(self, body: bytes) -> tuple[int, str]:
        ts = str(int(self.clock.now.timestamp()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature(body, ts),
        }
        async with self.browser.post(
            self.base + "/slack/events", data=body, headers=headers
        ) as response:
            return response.status, await response.text()

    async def command(self, text: str, *, team: str = TEAM, user: str = "W111") -> tuple[int, str]:
        body = slash_command_body(
            text,
            user=user,
            team=team,
            response_url=self.slack.response_url(f"cmd-{team}"),
            trigger_id=f"{text}.{team}.{len(self.slack.calls)}",
        )
        result = await self.signed(body)
        await self.adapter.app.wait_idle()
        return result

    async def event(self, event: dict[str, Any], *, team: str = TEAM, event_id: str) -> int:
        body = {
            "token": "x",
            "team_id": team,
            "api_app_id": "A111",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(self.clock.now.timestamp()),
            "event": event,
        }
        status, _ = await self.signed(json.dumps(body).encode())
        await self.adapter.app.wait_idle()
        return status

    async def installations(self) -> list[SlackInstallationRow]:
        async with self.app.deps.sessions() as session:
            return list((await session.exec(select(SlackInstallationRow))).all())


@asynccontextmanager
async def running_bot(tmp_path: Path, clock: FakeClock, slack: FakeSlack) -> AsyncIterator[Rig]:
    """The bot on a fresh port over the database in ``tmp_path``: twice in a row is a restart."""
    settings = Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=write_catalog(
            tmp_path / "catalog.toml", {"openai": "http://127.0.0.1:9/api/v2/summary.json"}
        ),
        slack_signing_secret=SECRET,
        slack_client_id=CLIENT_ID,
        slack_client_secret=CLIENT_SECRET,
        slack_api_url=slack.api_url,
        public_url=PUBLIC,
    )
    slack.users = {"W111": {"is_admin": True}}
    async with open_app(settings, clock=clock) as app:
        web_app = web.Application()
        adapter = create_slack_adapter(settings, app.deps, clock, web_app=web_app)
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await adapter.start()
        # A browser keeps the state cookie (Secure, as PUBLIC_URL is https; the TLS proxy
        # in front is not part of the test); aiohttp's jar refuses IP hosts unless unsafe.
        base = f"http://127.0.0.1:{port}"
        jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[URL(base)])
        try:
            async with aiohttp.ClientSession(cookie_jar=jar) as browser:
                yield Rig(slack, app, adapter, clock, base, browser)
        finally:
            await adapter.stop()
            await runner.cleanup()


@pytest.fixture
async def rig(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Rig]:
    async with FakeSlack() as slack, running_bot(tmp_path, clock, slack) as running:
        yield running


async def test_an_installed_workspace_is_served_with_its_own_token(rig: Rig) -> None:
    page = await rig.install()
    assert "installed" in page
    assert "Team Two" in page
    access = rig.slack.calls_to("oauth.v2.access")
    assert [c.params["code"] for c in access] == [f"code-{TEAM}"]
    [row] = await rig.installations()
    assert (row.workspace_id, row.team_name, row.bot_token) == (TEAM, "Team Two", TOKEN)
    assert row.installer_user_id == "UINSTALLER"

    # A command from that workspace: admin rights are asked with that workspace's token.
    assert await rig.command("help") == (200, "")
    await rig.slack.wait_until(lambda: bool(rig.slack.responses))
    assert rig.slack.responses[-1]["_hook"] == f"cmd-{TEAM}"
    assert [c.token for c in rig.slack.calls_to("users.info")] == [TOKEN]

    # A workspace that never installed the app gets a plain answer, and nothing runs.
    status, ack = await rig.command("status", team=OTHER)
    assert status == 200
    assert UNKNOWN_TEAM_TEXT in ack


async def test_an_alert_for_an_installed_workspace_is_posted_with_its_token(rig: Rig) -> None:
    await rig.install()
    await rig.install(team=OTHER, token="xoxb-team-three", name="Team Three")
    async with rig.app.deps.sessions() as session:
        for team, channel in ((TEAM, "C222"), (OTHER, "C333")):
            session.add(
                SubscriptionRow(
                    platform="slack",
                    community_id=team,
                    channel_id=channel,
                    service_id="openai",
                    created_at=rig.clock.now,
                )
            )
        await session.commit()
        await alert_store.record_alert_events(
            session=session, events=[_opened(rig.clock.now)], now=rig.clock.now
        )
        await session.commit()
    worker = OutboxWorker(
        sessions=rig.app.deps.sessions,
        senders={"slack": rig.adapter.sender},
        catalog=rig.app.deps.catalog,
        clock=rig.clock,
    )
    assert await worker.run_once() == 2
    posted = {c.params["channel"]: c.token for c in rig.slack.calls_to("chat.postMessage")}
    assert posted == {"C222": TOKEN, "C333": "xoxb-team-three"}


async def test_delivering_to_a_workspace_without_an_install_fails_for_good(rig: Rig) -> None:
    channel = ChannelRef(platform="slack", community_id="T404", channel_id="C404")
    with pytest.raises(PermanentDeliveryError, match="not installed"):
        await rig.adapter.sender.send(channel, Reply(title="x"), key="k")
    assert not rig.slack.calls_to("chat.postMessage")


@pytest.mark.parametrize("case", ["wrong", "missing", "reused", "expired", "other browser"])
async def test_a_bad_state_gets_a_friendly_page_and_stores_nothing(rig: Rig, case: str) -> None:
    rig.slack.grants["code-1"] = Grant(team_id=TEAM, team_name="Team Two", bot_token=TOKEN)
    state = await rig.start_install()
    query = {"code": "code-1", "state": state}
    if case == "wrong":
        query["state"] = "not-the-state-we-issued"
    elif case == "missing":
        del query["state"]
    elif case == "reused":
        rig.slack.grants["code-0"] = Grant(team_id=OTHER, team_name="T3", bot_token="xoxb-3")
        assert (await rig.finish(code="code-0", state=state))[0] == 200
        rig.browser.cookie_jar.update_cookies(
            {"outagebot_slack_state": state}, response_url=URL(rig.base + "/slack/")
        )
    elif case == "expired":
        rig.clock.advance(minutes=11)
    else:
        rig.browser.cookie_jar.clear()
    status, page = await rig.finish(**query)
    assert status == 400
    assert "expired" in page
    assert "/slack/install" in page
    assert "Traceback" not in page
    installed = {row.workspace_id for row in await rig.installations()}
    assert TEAM not in installed
    assert "code-1" in rig.slack.grants  # the code was never spent


async def test_cancel_and_a_refused_code_get_friendly_pages(rig: Rig) -> None:
    state = await rig.start_install()
    assert (await rig.finish(error="access_denied", state=state))[0] == 200
    state = await rig.start_install()
    status, page = await rig.finish(code="never-issued", state=state)
    assert status == 400
    assert "did not confirm" in page
    assert await rig.installations() == []


async def test_a_cancel_link_without_the_cookie_leaves_the_install_usable(rig: Rig) -> None:
    rig.slack.grants["code-1"] = Grant(team_id=TEAM, team_name="Team Two", bot_token=TOKEN)
    state = await rig.start_install()
    # Someone who learnt the state sends the cancel redirect from another browser.
    cancel = urlencode({"error": "access_denied", "state": state})
    url = f"{rig.base}/slack/oauth_redirect?{cancel}"
    async with aiohttp.ClientSession() as stranger, stranger.get(url) as response:
        assert response.status == 200
        assert "cancelled" in await response.text()
    status, page = await rig.finish(code="code-1", state=state)
    assert status == 200, page
    assert [row.workspace_id for row in await rig.installations()] == [TEAM]


async def test_a_cancel_from_the_right_browser_spends_the_state(rig: Rig) -> None:
    rig.slack.grants["code-1"] = Grant(team_id=TEAM, team_name="Team Two", bot_token=TOKEN)
    state = await rig.start_install()
    assert (await rig.finish(error="access_denied", state=state))[0] == 200
    rig.browser.cookie_jar.update_cookies(
        {"outagebot_slack_state": state}, response_url=URL(rig.base + "/slack/")
    )
    assert (await rig.finish(code="code-1", state=state))[0] == 400
    assert await rig.installations() == []


async def test_used_states_do_not_pile_up_and_issued_ones_are_not_stored(rig: Rig) -> None:
    for _ in range(3):
        await rig.start_install()
    assert await _stored_states(rig) == 0
    await rig.install()
    assert await _stored_states(rig) == 1  # remembered as used until it expires
    rig.clock.advance(minutes=11)
    await rig.install(team=OTHER, token="xoxb-team-three", name="Team Three")
    assert await _stored_states(rig) == 1


async def test_a_flood_of_install_starts_blocks_no_install_even_after_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with FakeSlack() as slack:
        async with running_bot(tmp_path, clock, slack) as first:
            await _flood(first.base + "/slack/install", 10_000)
            assert await _stored_states(first) == 0
            # A real user, in another browser, installs at once.
            assert "installed" in await first.install()
            started = await first.start_install()  # finished after the restart
        async with running_bot(tmp_path, clock, slack) as second:
            await second.install(team=OTHER, token="xoxb-team-three", name="Team Three")
            late = Grant(team_id="T444", team_name="F", bot_token="xoxb-4")
            second.slack.grants["code-late"] = late
            second.browser.cookie_jar.update_cookies(
                {"outagebot_slack_state": started}, response_url=URL(second.base + "/slack/")
            )
            status, page = await second.finish(code="code-late", state=started)
            assert status == 200, page
            installed = {row.workspace_id for row in await second.installations()}
    assert installed == {TEAM, OTHER, "T444"}


async def _flood(url: str, count: int) -> None:
    """``count`` GETs from one client, 50 at a time, as fast as the server answers."""
    connector = aiohttp.TCPConnector(limit=50)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as client:

        async def one() -> int:
            async with client.get(url, allow_redirects=False) as response:
                return response.status

        for _ in range(count // 500):
            assert set(await asyncio.gather(*(one() for _ in range(500)))) == {302}


async def _stored_states(rig: Rig) -> int:
    async with rig.app.deps.sessions() as session:
        return len((await session.exec(select(SlackOAuthStateRow))).all())


@pytest.mark.parametrize(
    "event",
    [
        {"type": "app_uninstalled"},
        {"type": "tokens_revoked", "tokens": {"bot": ["UBOT"]}},
    ],
)
async def test_uninstall_forgets_the_workspace_its_subscriptions_and_its_deliveries(
    rig: Rig, event: dict[str, Any]
) -> None:
    await rig.install()
    await rig.install(team=OTHER, token="xoxb-team-three", name="Team Three")
    async with rig.app.deps.sessions() as session:
        for team in (TEAM, OTHER):
            session.add(
                SubscriptionRow(
                    platform="slack",
                    community_id=team,
                    channel_id="C1",
                    service_id="openai",
                    created_at=rig.clock.now,
                )
            )
        await session.commit()
        await alert_store.record_alert_events(
            session=session, events=[_opened(rig.clock.now)], now=rig.clock.now
        )
        await session.commit()
    assert await rig.event(event, event_id="Ev1") == 200
    assert [row.workspace_id for row in await rig.installations()] == [OTHER]
    async with rig.app.deps.sessions() as session:
        subscriptions = (await session.exec(select(SubscriptionRow))).all()
        deliveries = (await session.exec(select(DeliveryRow))).all()
    assert [s.community_id for s in subscriptions] == [OTHER]
    # The removed workspace's waiting delivery went with its subscription: nothing to retry.
    assert {d.subscription_id for d in deliveries} == {subscriptions[0].id}
    _, ack = await rig.command("status", team=TEAM)
    assert UNKNOWN_TEAM_TEXT in ack


async def test_a_revoked_user_token_keeps_the_install(rig: Rig) -> None:
    await rig.install()
    event = {"type": "tokens_revoked", "tokens": {"oauth": ["W111"], "bot": []}}
    assert await rig.event(event, event_id="Ev2") == 200
    assert [row.workspace_id for row in await rig.installations()] == [TEAM]


async def test_an_unsigned_uninstall_event_changes_nothing(rig: Rig) -> None:
    await rig.install()
    body = json.dumps({"team_id": TEAM, "type": "event_callback", "event_id": "Ev3",
                       "event": {"type": "app_uninstalled"}}).encode()  # fmt: skip
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": "1"}
    async with rig.browser.post(rig.base + "/slack/events", data=body, headers=headers) as r:
        assert r.status == 401
    assert len(await rig.installations()) == 1


def _opened(now: datetime) -> DetectionEvent:
    detail = {"status": "investigating", "impact": "major", "started_at": now.isoformat()}
    detail |= {"update_status": "investigating", "update_body": "Looking into it"}
    detail |= {"update_at": now.isoformat()}
    return DetectionEvent(
        EventKind.INCIDENT_OPENED, "openai", now, "opened", "inc-1", "Outage", detail
    )


# --- the stores, on SQLite and PostgreSQL ----------------------------------------------------


async def test_installation_and_state_stores_on_both_databases(
    engine: AsyncEngine, clock: FakeClock
) -> None:
    sessions = session_factory(engine)
    installs = SlackInstallationStore(sessions, clock=clock)
    states = SlackOAuthStateStore(sessions, secret=CLIENT_SECRET, clock=clock)
    for token in ("xoxb-old", "xoxb-new"):  # a reinstall replaces the token
        await installs.async_save(
            Installation(team_id=TEAM, team_name="Two", bot_token=token, user_id="U1")
        )
    bot = await installs.async_find_bot(enterprise_id=None, team_id=TEAM)
    assert bot is not None
    assert bot.bot_token == "xoxb-new"
    assert await installs.bot_token(TEAM) == "xoxb-new"
    assert await installs.bot_token(OTHER) is None
    found = await installs.async_find_installation(enterprise_id=None, team_id=TEAM)
    assert found is not None
    assert found.user_id == "U1"
    with pytest.raises(ValueError, match="bot token"):
        await installs.async_save(Installation(team_id=OTHER, user_id="U1"))

    state = await states.async_issue()
    assert len(state) <= 64
    assert await states.async_consume(state) is True
    assert await states.async_consume(state) is False  # once only
    twice = await states.async_issue()
    won = await asyncio.gather(states.async_consume(twice), states.async_consume(twice))
    assert sorted(won) == [False, True]  # two redirects at once: one wins
    late = await states.async_issue()
    clock.advance(minutes=10, seconds=1)
    assert await states.async_consume(late) is False
    assert await states.async_consume("x" * 500) is False
    assert await states.async_consume("") is False

    # A state is only good with our signature: not forged, stretched, or from another app.
    good = await states.async_issue()
    nonce, expiry, mac = good.split(".")
    longer = f"{nonce}.{int(expiry, 16) + 86_400:x}.{mac}"
    tampered = mac[:-1] + ("B" if mac.endswith("A") else "A")  # never the mac itself
    stranger = SlackOAuthStateStore(sessions, secret="another-app-secret", clock=clock)
    for forged in (f"{nonce}.{expiry}.{tampered}", longer, await stranger.async_issue()):
        assert await states.async_consume(forged) is False
    assert await states.async_consume(good) is True
    with pytest.raises(ValueError, match="client secret"):
        SlackOAuthStateStore(sessions, secret="", clock=clock)

    await installs.async_delete_installation(enterprise_id=None, team_id=TEAM, user_id="U1")
    assert await installs.bot_token(TEAM) == "xoxb-new"  # a user's revocation keeps the bot
    assert await remove_workspace(sessions, team_id=TEAM) == (0, 0)
    assert await installs.bot_token(TEAM) is None
