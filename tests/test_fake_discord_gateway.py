"""The fake Discord is as strict as Discord about interactions, commands and the gateway, and the
bot copes: answers within 3 s and once, follow-ups after an answer, commands Discord accepts,
rate-limit headers everywhere, and a gateway that checks the token, wants heartbeats, asks for
reconnects and ends sessions."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.adapters.discord import DiscordAdapter
from bot.app import open_app
from tests.conftest import FakeClock
from tests.discord_harness import (
    CALLBACK,
    DiscordBot,
    config_for,
    embed_of,
    running_discord_bot,
    settings_for,
    slash,
)
from tests.fakes.discord_commands import command_list_error
from tests.fakes.discord_server import APPLICATION_ID, FakeDiscord

TOKEN = "fake-token"  # what config_for gives the adapter
MESSAGE = {"type": 4, "data": {"content": "hi"}}


def fake_for(clock: FakeClock) -> FakeDiscord:
    """A fake Discord on the test's clock that accepts only the adapter's token."""
    return FakeDiscord(now=lambda: clock.now.timestamp(), token=TOKEN)


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[DiscordBot]:
    async with (
        fake_for(clock) as fake,
        running_discord_bot(fake, tmp_path, clock, identify_at_once=True) as bot,
    ):
        yield bot


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeDiscord]:
    async with fake_for(clock) as server:
        yield server


async def _post(
    fake: FakeDiscord, path: str, body: Any, *, token: str = TOKEN
) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bot {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(fake.api_base + path, json=body, headers=headers) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.json()


async def _interaction(fake: FakeDiscord) -> dict[str, Any]:
    payload = slash("status")
    await fake.dispatch("INTERACTION_CREATE", payload)  # nobody connected: kept for a resume
    return payload


def _callback_path(payload: dict[str, Any]) -> str:
    return f"/interactions/{payload['id']}/{payload['token']}/callback"


def _followup_path(payload: dict[str, Any]) -> str:
    return f"/webhooks/{APPLICATION_ID}/{payload['token']}"


# The fake itself: Discord's answers to what the bot could get wrong.


async def test_a_callback_is_accepted_once_within_three_seconds(
    fake: FakeDiscord, clock: FakeClock
) -> None:
    on_time, late = await _interaction(fake), await _interaction(fake)
    clock.advance(seconds=2.9)
    assert (await _post(fake, _callback_path(on_time), MESSAGE))[0] == 200
    status, _, again = await _post(fake, _callback_path(on_time), MESSAGE)
    assert (status, again["code"]) == (400, 40060)
    assert again["message"] == "Interaction has already been acknowledged."
    clock.advance(seconds=0.2)
    status, _, expired = await _post(fake, _callback_path(late), MESSAGE)
    assert (status, expired) == (404, {"message": "Unknown interaction", "code": 10062})


async def test_a_callback_for_an_interaction_never_sent_is_unknown(fake: FakeDiscord) -> None:
    status, _, body = await _post(fake, "/interactions/1/no-such-token/callback", MESSAGE)
    assert (status, body["code"]) == (404, 10062)


async def test_follow_ups_need_an_answered_interaction_and_a_fresh_token(
    fake: FakeDiscord, clock: FakeClock
) -> None:
    payload = await _interaction(fake)
    status, _, early = await _post(fake, _followup_path(payload), {"content": "too soon"})
    assert (status, early) == (404, {"message": "Unknown Webhook", "code": 10015})
    await _post(fake, _callback_path(payload), {"type": 5})
    assert (await _post(fake, _followup_path(payload), {"content": "done"}))[0] == 200
    clock.advance(minutes=15, seconds=1)
    status, _, stale = await _post(fake, _followup_path(payload), {"content": "much later"})
    assert (status, stale["code"]) == (401, 50027)


async def test_every_rest_answer_carries_rate_limit_headers(fake: FakeDiscord) -> None:
    for path in ("/users/@me", "/channels/1/messages"):  # a success and an error
        async with (
            aiohttp.ClientSession() as http,
            http.get(fake.api_base + path, headers={"Authorization": f"Bot {TOKEN}"}) as answer,
        ):
            limits = answer.headers
        assert int(limits["X-RateLimit-Limit"]) > int(limits["X-RateLimit-Remaining"]) > 0
        assert float(limits["X-RateLimit-Reset-After"]) > 0
        assert float(limits["X-RateLimit-Reset"]) > 1_700_000_000  # epoch seconds
        assert limits["X-RateLimit-Bucket"]
    fake.rate_limit("POST", r"/channels/\d+/messages", retry_after=0.5)
    status, headers, body = await _post(fake, "/channels/1/messages", {"content": "x"})
    assert status == 429
    assert (body["retry_after"], body["global"]) == (0.5, False)
    assert headers["X-RateLimit-Scope"] == "user"
    assert headers["X-RateLimit-Remaining"] == "0"


async def test_a_wrong_token_is_refused_by_the_api(fake: FakeDiscord) -> None:
    status, _, body = await _post(fake, "/channels/1/messages", {}, token="stolen")
    assert (status, body) == (401, {"message": "401: Unauthorized", "code": 0})


def _command(**fields: Any) -> dict[str, Any]:
    return {"name": "status", "type": 1, "description": "Service status"} | fields


def _option(name: str, *, required: bool = False, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": 3, "description": "d", "required": required} | fields


_CHOICES = [{"name": f"c{n}", "value": f"c{n}"} for n in range(26)]
_LONG_CHOICES = [{"name": "n" * 100, "value": f"v{n}"} for n in range(2)]  # 25 x 2 x 100 > 4000


@pytest.mark.parametrize(
    ("commands", "path", "code"),
    [
        ([_command(name="Status")], ("0", "name"), "APPLICATION_COMMAND_INVALID_NAME"),
        ([_command(name="two words")], ("0", "name"), "APPLICATION_COMMAND_INVALID_NAME"),
        ([_command(name="x" * 33)], ("0", "name"), "BASE_TYPE_BAD_LENGTH"),
        ([_command(description="")], ("0", "description"), "BASE_TYPE_BAD_LENGTH"),
        ([_command(description="d" * 101)], ("0", "description"), "BASE_TYPE_BAD_LENGTH"),
        (
            [_command(options=[_option(f"o{n}") for n in range(26)])],
            ("0", "options"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        (
            [_command(options=[_option("later"), _option("first", required=True)])],
            ("0", "options", "1"),
            "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
        ),
        (
            [_command(options=[_option("pick", choices=_CHOICES)])],
            ("0", "options", "0", "choices"),
            "BASE_TYPE_MAX_LENGTH",
        ),
        ([_command(), _command()], ("1", "name"), "APPLICATION_COMMANDS_DUPLICATE_NAME"),
        (
            [_command(options=[_option(f"o{n}", choices=_LONG_CHOICES) for n in range(25)])],
            ("0",),
            "APPLICATION_COMMAND_TOO_LARGE",
        ),
        (
            [_command(name=f"c{n}") for n in range(101)],
            ("100",),
            "APPLICATION_COMMANDS_TOO_MANY",
        ),
    ],
)
async def test_command_registration_is_refused_as_discord_refuses_it(
    fake: FakeDiscord, commands: list[dict[str, Any]], path: tuple[str, ...], code: str
) -> None:
    status, _, body = await _post_put(fake, commands)
    assert (status, body["code"], body["message"]) == (400, 50035, "Invalid Form Body")
    node = body["errors"]
    for part in path:
        node = node[part]
    assert node["_errors"][0]["code"] == code
    assert fake.commands == {}


def test_names_in_scripts_discord_allows_pass() -> None:
    good = [_command(name="स्थिति"), _command(name="สถานะ"), _command(name="état-1_x")]
    assert command_list_error(good) is None


async def _post_put(fake: FakeDiscord, commands: Any) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.put(
            f"{fake.api_base}/applications/{APPLICATION_ID}/commands",
            json=commands,
            headers={"Authorization": f"Bot {TOKEN}"},
        ) as answer,
    ):
        return answer.status, dict(answer.headers), await answer.json()


async def test_the_product_commands_are_accepted(bot: DiscordBot) -> None:
    [sync] = bot.fake.matching("PUT", rf"/applications/{APPLICATION_ID}/commands")
    assert command_list_error(sync.json) is None
    assert {c["name"] for c in bot.fake.commands["global"]} == {
        spec.name for spec in bot.app.deps.registry
    }


# The bot against the strict gateway.


async def _answers_status(bot: DiscordBot) -> None:
    assert embed_of(await bot.interact(slash("status")))["title"] == "Service status"


async def test_op_7_reconnect_is_resumed(bot: DiscordBot) -> None:
    await bot.fake.gateway.ask_to_reconnect()
    await bot.fake.wait_for_gateway(identifies=1, resumes=1)
    await _answers_status(bot)
    assert bot.fake.gateway.identifies == 1


async def test_op_9_invalid_session_identifies_afresh(bot: DiscordBot) -> None:
    await bot.fake.gateway.invalidate_session(resumable=False)
    await bot.fake.wait_for_gateway(identifies=2)
    await _answers_status(bot)
    assert bot.fake.gateway.resumes == 0


async def test_op_9_resumable_invalid_session_resumes(bot: DiscordBot) -> None:
    await bot.fake.gateway.invalidate_session(resumable=True)
    await bot.fake.wait_for_gateway(identifies=1, resumes=1)
    await _answers_status(bot)


async def test_a_silent_connection_is_timed_out_and_the_bot_identifies_again(
    bot: DiscordBot, clock: FakeClock
) -> None:
    gateway = bot.fake.gateway
    clock.advance(seconds=40)
    beats = gateway.heartbeats
    await gateway.request_heartbeat()  # op 1: discord.py beats at once
    await bot.fake.wait_until(lambda: gateway.heartbeats > beats)
    clock.advance(seconds=40)  # 40 s since that beat: within the grace
    assert await gateway.expire_silent() == 0
    clock.advance(seconds=60)  # no beat for 100 s on the fake's clock
    assert await gateway.expire_silent() == 1
    await bot.fake.wait_for_gateway(identifies=2)  # the session ended with 4009
    await _answers_status(bot)


async def test_an_interaction_answered_too_late_is_logged_without_a_retry(
    bot: DiscordBot, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await bot.fake.drop()
    bot.fake.gateway_up.clear()  # the bot is away while a user runs /status
    payload = slash("status")
    await bot.fake.dispatch("INTERACTION_CREATE", payload)
    clock.advance(seconds=5)
    bot.fake.gateway_up.set()
    await bot.fake.wait_for_gateway(identifies=1, resumes=1)  # the RESUME replays it, late
    await bot.fake.wait_for_call("POST", CALLBACK)
    await _answers_status(bot)  # a fresh interaction is answered as usual
    late = [c for c in bot.fake.matching("POST", CALLBACK) if payload["token"] in c.path]
    assert len(late) == 1  # no second callback for an interaction Discord has forgotten
    assert "expired" in caplog.text
    assert "Traceback" not in caplog.text


async def test_a_token_the_gateway_refuses_stops_discord_with_a_clear_error(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with fake_for(clock) as fake, open_app(settings_for(tmp_path), clock=clock) as app:
        fake.gateway.token = "another-token"  # the API still takes ours; the gateway does not
        adapter = DiscordAdapter(
            config=config_for(fake, tmp_path / "s.sha256"), deps=app.deps, clock=clock
        )
        with caplog.at_level(logging.ERROR, logger="bot.adapters.discord.adapter"):
            await adapter.start()
            try:
                await asyncio.wait_for(adapter.gave_up.wait(), 5)
                assert (adapter.problem, adapter.ready) == ("token refused", False)
            finally:
                await adapter.stop()
    assert fake.gateway.refused_tokens == 1  # no retry loop against a refused token
    assert "Discord refused DISCORD_TOKEN" in caplog.text
    assert TOKEN not in caplog.text


async def test_a_token_the_api_refuses_stops_discord_with_a_clear_error(
    tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async with fake_for(clock) as fake, open_app(settings_for(tmp_path), clock=clock) as app:
        config = config_for(fake, tmp_path / "s.sha256", token="revoked-token")
        adapter = DiscordAdapter(config=config, deps=app.deps, clock=clock)
        await adapter.start()
        try:
            await asyncio.wait_for(adapter.gave_up.wait(), 5)
            assert adapter.problem == "token refused"
        finally:
            await adapter.stop()
    assert fake.gateway.identifies == 0
    assert "Discord refused DISCORD_TOKEN" in caplog.text


def test_interaction_payloads_carry_what_discord_sends_today() -> None:
    payload = slash("status")
    assert payload["channel"]["id"] == payload["channel_id"]
    assert payload["authorizing_integration_owners"] == {"0": payload["guild_id"]}
    assert payload["context"] == 0
    for key in ("app_permissions", "entitlements", "locale", "guild_locale"):
        assert key in payload
    dm = slash("status", guild_id=None)
    assert (dm["context"], dm["channel"]["type"]) == (1, 1)
    bare = slash("status", channel_object=False)
    assert "channel" not in bare
    assert copy.deepcopy(bare)["channel_id"]
