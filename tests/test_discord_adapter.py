"""The real discord.py client against a fake Discord on loopback: every command end to end."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.adapters.discord import DiscordAdapter
from bot.app import open_app
from bot.store.models import SubscriptionRow
from tests.conftest import FakeClock
from tests.discord_harness import (
    AUTOCOMPLETE,
    BUTTON,
    CALLBACK,
    MEMBER,
    SLASH,
    DiscordBot,
    config_for,
    embed_of,
    running_discord_bot,
    settings_for,
    slash,
    stamp,
)
from tests.fakes.discord_server import APPLICATION_ID, CHANNEL_ID, GUILD_ID, FakeDiscord


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[DiscordBot]:
    # Interactions' 3 s run on the test's clock: a busy machine cannot make an answer late.
    async with (
        FakeDiscord(now=lambda: clock.now.timestamp()) as fake,
        running_discord_bot(fake, tmp_path, clock) as bot,
    ):
        yield bot


async def test_login_syncs_every_registered_command_once(bot: DiscordBot) -> None:
    synced = bot.fake.matching("PUT", rf"/applications/{APPLICATION_ID}/commands")
    assert len(synced) == 1
    names = {c["name"] for c in synced[0].json}
    assert names == {spec.name for spec in bot.app.deps.registry}
    service = next(c for c in synced[0].json if c["name"] == "service")
    assert int(service["default_member_permissions"]) == 32  # Manage Server
    status = next(c for c in synced[0].json if c["name"] == "status")
    assert status["options"][0]["autocomplete"] is True
    assert bot.state_file.read_text().strip()


async def test_unchanged_tree_is_not_synced_again_and_dev_guild_syncs_there(
    bot: DiscordBot, clock: FakeClock
) -> None:
    await bot.adapter.stop()
    again = DiscordAdapter(
        config=config_for(bot.fake, bot.state_file), deps=bot.app.deps, clock=clock
    )
    await again.start()
    await again.stop()
    assert len(bot.fake.matching("PUT", r"/applications/\d+/commands")) == 1
    dev = DiscordAdapter(
        config=config_for(bot.fake, bot.state_file, dev_guild=int(GUILD_ID)),
        deps=bot.app.deps,
        clock=clock,
    )
    await dev.start()
    await dev.stop()
    assert len(bot.fake.matching("PUT", rf"/applications/\d+/guilds/{GUILD_ID}/commands")) == 1


async def test_status_overview(bot: DiscordBot) -> None:
    body = await bot.interact(slash("status"))
    assert body["type"] == 4
    embed = embed_of(body)
    assert embed["title"] == "Service status"
    assert "Openai-Api" in embed["description"]
    assert body["data"]["allowed_mentions"] == {"parse": []}


async def test_status_of_one_service_by_alias(bot: DiscordBot) -> None:
    body = await bot.interact(slash("status", service="anthropic-alias"))
    embed = embed_of(body)
    assert embed["title"] == "Anthropic status"
    buttons = body["data"]["components"][0]["components"]
    assert buttons[0]["custom_id"] == "ob:report anthropic"  # "I'm affected too"
    assert buttons[1]["style"] == 5  # a link to the official page
    assert buttons[1]["url"].startswith("http://127.0.0.1:9/anthropic")


async def test_unknown_service_suggests_the_closest(bot: DiscordBot) -> None:
    body = await bot.interact(slash("status", service="antropic"))
    assert body["data"]["flags"] & 64  # ephemeral
    assert "Did you mean Anthropic" in embed_of(body)["description"]


async def test_help(bot: DiscordBot) -> None:
    body = await bot.interact(slash("help"))
    text = embed_of(body)["description"]
    assert "/status" in text
    assert body["data"]["flags"] & 64


async def test_admin_command_refused_to_a_member(bot: DiscordBot) -> None:
    body = await bot.interact(
        slash("service", permissions=MEMBER, action="add", name="Acme", url="https://x.test")
    )
    assert body["data"]["flags"] & 64
    assert "Only server admins" in embed_of(body)["description"]


async def test_admin_command_runs_for_a_manager(bot: DiscordBot) -> None:
    manage_guild = str(1 << 5)
    body = await bot.interact(slash("service", permissions=manage_guild, action="remove", name="x"))
    assert "Only server admins" not in embed_of(body)["description"]


@pytest.mark.parametrize("channel_id", [CHANNEL_ID, "645027906669599999"])  # cached, or not
async def test_a_payload_with_only_channel_id_subscribes_that_channel(
    bot: DiscordBot, channel_id: str
) -> None:
    payload = slash("subscribe", service="openai-api", channel_object=False)
    payload["channel_id"] = channel_id
    body = await bot.interact(payload)
    assert embed_of(body)["title"] == "Subscribed"
    async with bot.app.deps.sessions() as session:
        rows = (await session.exec(select(SubscriptionRow))).all()
    assert [(row.community_id, row.channel_id) for row in rows] == [(GUILD_ID, channel_id)]


async def test_slow_handlers_are_deferred_then_followed_up(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with FakeDiscord() as fake, open_app(settings_for(tmp_path), clock=clock) as app:
        config = config_for(fake, tmp_path / "s.sha256", defer_after_seconds=0)
        adapter = DiscordAdapter(config=config, deps=app.deps, clock=clock)
        await adapter.start()
        try:
            await fake.wait_for_gateway()
            payload = slash("status")
            await fake.dispatch("INTERACTION_CREATE", payload)
            callback = await fake.wait_for_call("POST", CALLBACK)
            assert callback.json["type"] == 5  # deferred: "outagebot is thinking…"
            edit = await fake.wait_for_call("PATCH", rf"/webhooks/\d+/{payload['token']}/.*")
            assert edit.json["embeds"][0]["title"] == "Service status"
            # An ephemeral answer after a public defer replaces the thinking message.
            private = slash("help")
            await fake.dispatch("INTERACTION_CREATE", private)
            await fake.wait_for_call("DELETE", rf"/webhooks/\d+/{private['token']}/.*")
            followup = await fake.wait_for_call("POST", rf"/webhooks/\d+/{private['token']}")
            assert followup.json["flags"] & 64
        finally:
            await adapter.stop()


async def test_autocomplete_matches_aliases_and_never_defers(bot: DiscordBot) -> None:
    payload = copy.deepcopy(AUTOCOMPLETE)
    payload |= {"guild_id": GUILD_ID, "channel_id": CHANNEL_ID, "member": SLASH["member"]}
    payload["data"] |= {"name": "status"}
    payload["data"]["options"] = [
        {"type": 3, "name": "service", "value": "anthropic-al", "focused": True}
    ]
    body = await bot.interact(stamp(payload))
    assert body["type"] == 8
    choices = body["data"]["choices"]
    assert choices == [{"name": "Anthropic (anthropic)", "value": "anthropic"}]
    payload["data"]["options"][0]["value"] = ""
    everything = await bot.interact(stamp(payload))
    assert 2 <= len(everything["data"]["choices"]) <= 25


async def test_action_button_runs_its_command_as_the_clicker(bot: DiscordBot) -> None:
    payload = copy.deepcopy(BUTTON)
    payload["guild_id"] = GUILD_ID
    payload["data"]["custom_id"] = "ob:status openai-api"
    body = await bot.interact(stamp(payload))
    assert body["type"] == 4
    assert embed_of(body)["title"] == "Openai-Api status"


async def test_button_for_an_admin_command_is_refused_to_a_member(bot: DiscordBot) -> None:
    payload = copy.deepcopy(BUTTON)
    payload["guild_id"] = GUILD_ID
    payload["member"]["permissions"] = MEMBER
    payload["data"]["custom_id"] = "ob:service remove anthropic"
    body = await bot.interact(stamp(payload))
    assert "Only server admins" in embed_of(body)["description"]


async def test_dm_is_answered_politely(bot: DiscordBot) -> None:
    body = await bot.interact(slash("status", guild_id=None))
    assert body["data"]["flags"] & 64
    assert "inside servers" in embed_of(body)["description"]


async def test_guild_without_the_bot_is_told_so(bot: DiscordBot) -> None:
    body = await bot.interact(slash("status", guild_id="111111111111111111"))
    assert "not installed in this server" in embed_of(body)["description"]


async def test_mention_injection_in_options_pings_nobody(bot: DiscordBot) -> None:
    body = await bot.interact(slash("help", command="@everyone <@&1> <#2>"))
    text = embed_of(body)["description"]
    assert "@everyone" not in text
    assert "<@&" not in text
    assert "<#" not in text
    assert body["data"]["allowed_mentions"] == {"parse": []}


async def test_dropped_gateway_resumes_and_keeps_answering(bot: DiscordBot) -> None:
    await bot.fake.drop()
    await bot.fake.wait_for_gateway(identifies=1, resumes=1)
    body = await bot.interact(slash("status"))
    assert embed_of(body)["title"] == "Service status"


async def test_explicit_shards_use_the_configured_gateway(tmp_path: Path, clock: FakeClock) -> None:
    async with FakeDiscord() as fake, open_app(settings_for(tmp_path), clock=clock) as app:
        config = config_for(fake, tmp_path / "s.sha256", shard_count=1, shard_ids=(0,))
        adapter = DiscordAdapter(config=config, deps=app.deps, clock=clock)
        await adapter.start()
        try:
            await fake.wait_for_gateway()
            assert not fake.matching("GET", "/gateway/bot")  # DEFAULT_GATEWAY was pointed here
        finally:
            await adapter.stop()
