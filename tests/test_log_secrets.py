"""No token reaches the logs: representative flows at DEBUG through the app's real logging setup.

Every flow logs through `bot.logsetup.configure_logging` (the CLI's own setup, redaction
included) into a buffer, which is then scanned for the configured secrets, fragments of them,
and anything token-shaped. Each test also checks that its flow really logged, so a silent run
cannot pass for a clean one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.adapters.discord.sender import DiscordSender
from bot.adapters.slack import web_client
from bot.adapters.slack.identity import AdminLookup
from bot.adapters.slack.sender import SlackSender
from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    Reply,
)
from bot.core.rich import rich
from bot.delivery.sender import ChannelRef, PermanentDeliveryError, TransientDeliveryError
from bot.logsetup import configure_logging
from bot.settings import Settings, parse_webhook_secrets
from bot.sources.fetch import new_http_session
from bot.store.engine import session_factory
from bot.store.user_hash import load_or_create_salt
from bot.testing import TestAdapter
from tests.conftest import FakeClock
from tests.fakes.discord_server import CHANNEL_ID, GUILD_ID, FakeDiscord
from tests.fakes.slack_server import Failure, FakeSlack
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import (
    bot_env,
    catalog_for,
    make_poller,
    read_until,
    start_bot_run,
    write_catalog,
)

SLACK_BOT = "xoxb-2401234567-5012345678901-AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP = "xapp-1-A0123456789-5012345678901-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
SLACK_SIGNING = "8f14e45fceea167a5a36dedd4bea2543"
SLACK_CLIENT_SECRET = "c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6"
DISCORD = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789ab"
ADMIN_API = "adm-7e57c0ffee-0123456789abcdef0"
WEBHOOK_SECRET = "whsec-5ecret-0123456789abcdef"
URL_PASSWORD = "pw-urlpass-0123456789"
SECRETS = [
    SLACK_BOT,
    SLACK_APP,
    SLACK_SIGNING,
    SLACK_CLIENT_SECRET,
    DISCORD,
    ADMIN_API,
    WEBHOOK_SECRET,
    URL_PASSWORD,
]
TOKEN_SHAPES = re.compile(
    r"xox[a-z]-[A-Za-z0-9]"
    r"|xapp-[A-Za-z0-9]"
    r"|[MNO][A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{20,}"
    r"|bearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{6,}",
    re.IGNORECASE,
)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def leaks(text: str) -> list[str]:
    """Secrets, 12-character fragments of them, and token shapes found in ``text``."""
    found = [m.group(0) for m in TOKEN_SHAPES.finditer(text)]
    for secret in SECRETS:
        fragments = {secret[i : i + 12] for i in range(0, len(secret) - 11, 4)}
        found += [f for f in fragments if f in text]
    return found


@pytest.fixture
def settings() -> Settings:
    return Settings(
        _env_file=None,
        log_level="DEBUG",
        discord_token=DISCORD,
        slack_bot_token=SLACK_BOT,
        slack_app_token=SLACK_APP,
        slack_signing_secret=SLACK_SIGNING,
        slack_client_id="1234.5678",
        slack_client_secret=SLACK_CLIENT_SECRET,
        api_admin_token=ADMIN_API,
        statuspage_webhook_secrets=f"openai-api:{WEBHOOK_SECRET}",
    )


@pytest.fixture
def logs(settings: Settings) -> Iterator[io.StringIO]:
    """Everything logged during the test, through the app's own logging setup."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("apscheduler").level)
    buffer = io.StringIO()
    configure_logging(settings, stream=buffer)
    try:
        yield buffer
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.getLogger("apscheduler").setLevel(saved[2])


def assert_clean(buffer: io.StringIO, *expected: str) -> str:
    text = buffer.getvalue()
    for needle in expected:
        assert needle in text, f"the flow did not log {needle!r}:\n{text[-2000:]}"
    found = leaks(text)
    assert not found, f"secrets in the log: {found}\n{text[-3000:]}"
    return text


def test_settings_and_their_errors_log_no_secret(settings: Settings, logs: io.StringIO) -> None:
    log = logging.getLogger("outagebot.test")
    log.info("settings: %s", settings)
    log.debug("settings dump: %r", settings.model_dump())
    log.info("platforms: %s", settings.enabled_chat_platforms)
    try:
        parse_webhook_secrets(f"openai-api:{WEBHOOK_SECRET},anthropic-api:short")
    except ValueError:
        log.exception("bad STATUSPAGE_WEBHOOK_SECRETS")
    else:
        pytest.fail("a 5-character webhook secret was accepted")
    # A careless call site: the token in the message, an argument, an extra field and a traceback.
    try:
        raise RuntimeError(f"login failed for {DISCORD}")
    except RuntimeError:
        log.exception(
            "Authorization: Bearer %s / %s", ADMIN_API, SLACK_BOT, extra={"token": SLACK_APP}
        )
    text = assert_clean(logs, "settings:", "bad STATUSPAGE_WEBHOOK_SECRETS", "login failed")
    assert "[redacted]" in text


async def test_a_failing_command_logs_its_traceback_without_secrets(logs: io.StringIO) -> None:
    async def leaky(ctx: Context[None]) -> Reply:
        raise ConnectionError(f"POST https://x.example/?token={SLACK_BOT} Bearer {ADMIN_API}")

    registry = CommandRegistry()
    registry.add(CommandSpec("leaky", "fails with a token in the error", leaky))
    reply = await TestAdapter(registry, lambda: NOW, platform="discord", community="g").invoke(
        "leaky"
    )
    assert reply.ephemeral
    assert "went wrong on our side" in "".join(getattr(s, "text", "") for s in reply.body)
    assert rich("x")  # the reply is rich text; the details live only in the (redacted) log
    assert_clean(logs, "command leaky failed", "ConnectionError")


async def test_a_failing_status_fetch_with_secrets_in_its_url(
    engine: AsyncEngine, clock: FakeClock, logs: io.StringIO
) -> None:
    async with FakeStatusServer() as server:
        server.set_script("/api/v2/summary.json", [Step(status=500, body=b"oops")])
        base = server.url("/api/v2/summary.json")
        failing = base.replace("://", f"://ops:{URL_PASSWORD}@") + f"?token={SLACK_BOT}"
        refused = f"http://127.0.0.1:9/api/v2/summary.json?key={DISCORD}&auth=Bearer%20{ADMIN_API}"
        catalog = catalog_for({"leaky": failing, "gone": refused})
        async with new_http_session(user_agent="tests") as http:
            poller = await make_poller(engine, clock, catalog, http)
            await poller.poll(failing)
            await poller.poll(refused)
        assert server.count("/api/v2/summary.json") >= 1
    # On SQLite the driver's DEBUG lines see the stored URL too (as bound SQL values).
    assert_clean(logs, "unreadable", "127.0.0.1:9")


async def test_debug_sql_logging_echoes_no_stored_secret(
    engine: AsyncEngine, clock: FakeClock, logs: io.StringIO
) -> None:
    """The user-hash salt lives in the database; DEBUG logs of the driver must not show it."""
    sessions = session_factory(engine)
    async with sessions() as session:
        salt = await load_or_create_salt(session=session, now=clock.now)
        await session.commit()
    async with sessions() as session:
        assert await load_or_create_salt(session=session, now=clock.now) == salt
    text = logs.getvalue()
    assert "instance_secrets" in text or engine.dialect.name == "postgresql"
    fragments = {salt.hex()[i : i + 16] for i in range(0, 48, 8)}
    shown = [f for f in fragments if f in text]
    assert not shown, f"the user-hash salt is in the DEBUG log: {shown}"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


async def test_slack_error_paths_log_no_token(
    settings: Settings, slack: FakeSlack, clock: FakeClock, logs: io.StringIO
) -> None:
    pointed = settings.model_copy(update={"slack_api_url": slack.api_url})
    client = web_client(pointed, retry_connection_errors=False)
    slack.fail("users.info", Failure(error="invalid_auth"))
    assert not await AdminLookup(clock=clock).is_admin(client, team_id="T1", user_id="U1")

    sender = SlackSender(client, clock=clock)
    channel = ChannelRef(platform="slack", community_id="T1", channel_id="C1")
    slack.fail("chat.postMessage", Failure(error="token_revoked"))
    with pytest.raises(PermanentDeliveryError):
        await sender.send(channel, Reply(body=rich("hi")), key="k1")
    slack.fail("chat.postMessage", Failure(error="ratelimited", status=429, retry_after=1))
    with pytest.raises(TransientDeliveryError):
        await sender.send(channel, Reply(body=rich("hi")), key="k2")

    gone = settings.model_copy(update={"slack_api_url": "http://127.0.0.1:9/api/"})
    unreachable = SlackSender(web_client(gone, retry_connection_errors=False), clock=clock)
    with pytest.raises(TransientDeliveryError):
        await unreachable.send(channel, Reply(body=rich("hi")), key="k3")
    assert slack.calls_to("users.info")[0].token == SLACK_BOT  # the token really was in play
    assert_clean(logs, "users.info failed", "slack_sdk")


async def test_discord_error_paths_log_no_token(clock: FakeClock, logs: io.StringIO) -> None:
    channel = ChannelRef(platform="discord", community_id=GUILD_ID, channel_id=CHANNEL_ID)
    worker_log = logging.getLogger("bot.delivery.worker")
    async with FakeDiscord() as fake, aiohttp.ClientSession() as session:
        sender = DiscordSender(token=DISCORD, api_base=fake.api_base, session=session, clock=clock)
        gone = DiscordSender(
            token=DISCORD, api_base="http://127.0.0.1:9/api/v10", session=session, clock=clock
        )
        fake.fail("POST", r"/channels/\d+/messages", 401, body={"message": "401: Unauthorized"})
        fake.fail(
            "POST",
            r"/channels/\d+/messages",
            400,
            body={"message": "Invalid Form Body", "code": 50035},
        )
        fake.fail("POST", r"/channels/\d+/messages", 500, body={"message": "boom", "code": 0})
        for target, key in ((sender, "k1"), (sender, "k2"), (sender, "k3"), (gone, "k4")):
            try:
                await target.send(channel, Reply(body=rich("hi")), key=key)
            except (PermanentDeliveryError, TransientDeliveryError) as exc:
                # What the outbox worker does with a failed delivery.
                worker_log.warning("delivery %s failed: %s", key, exc, exc_info=True)
            else:
                pytest.fail(f"send {key} should have failed")
    sent = fake.matching("POST", r"/channels/\d+/messages")
    assert sent[0].headers.get("Authorization") == f"Bot {DISCORD}"  # the token was in play
    assert_clean(logs, "HTTP 401", "HTTP 400 code 50035", "HTTP 500", "delivery k4 failed")


async def test_the_whole_bot_at_debug_writes_no_secret(tmp_path: Path) -> None:
    """`outagebot run` as a real process with every token set, at DEBUG: its whole stderr."""
    async with (
        FakeStatusServer() as server,
        FakeDiscord() as discord_fake,
        FakeSlack() as slack_fake,
    ):
        server.set_script(SUMMARY_PATH, [Step(status=503, body=b"down for maintenance")])
        leaky_url = server.url(SUMMARY_PATH) + f"?token={SLACK_BOT}"
        catalog = write_catalog(tmp_path / "catalog.toml", {"leaky": leaky_url})
        env = bot_env(
            tmp_path,
            catalog,
            LOG_LEVEL="DEBUG",
            CONSOLE="off",
            DISCORD_TOKEN=DISCORD,
            DISCORD_API_BASE=discord_fake.api_base,
            DISCORD_GATEWAY_URL=discord_fake.gateway_url,
            SLACK_BOT_TOKEN=SLACK_BOT,
            SLACK_SIGNING_SECRET=SLACK_SIGNING,
            SLACK_API_URL=slack_fake.api_url,
            API_ADMIN_TOKEN=ADMIN_API,
            STATUSPAGE_WEBHOOK_SECRETS=f"leaky:{WEBHOOK_SECRET}",
        )
        process = await start_bot_run(tmp_path, env)
        assert process.stderr is not None
        seen: list[str] = []
        try:
            await asyncio.wait_for(read_until(process.stderr, r"web server on http", seen), 60)
            await asyncio.wait_for(discord_fake.wait_for_gateway(), 60)
            await asyncio.wait_for(read_until(process.stderr, r"unreadable", seen), 60)
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
        rest = (await process.stderr.read()).decode()
    text = "".join(seen) + rest
    assert " DEBUG " in text  # the level really was DEBUG
    assert "Traceback" not in text, text[-3000:]
    found = leaks(text)
    assert not found, f"secrets in the bot's log: {found}\n{text[-3000:]}"
