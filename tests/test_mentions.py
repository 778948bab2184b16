"""Typed mentions: what people type on each platform, how it is stored, and old rows migrated."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.mention import Mention, MentionError, MentionKind, parse_mention
from bot.store import migrate
from bot.store.engine import create_engine
from tests.conftest import empty_tables

ROLE = "290926798626357111"


@pytest.mark.parametrize(
    ("platform", "typed", "expected"),
    [
        ("discord", f"<@&{ROLE}>", Mention(MentionKind.ROLE, ROLE)),
        ("discord", ROLE, Mention(MentionKind.ROLE, ROLE)),
        ("slack", "<!subteam^S0614TZR7|@oncall>", Mention(MentionKind.SUBTEAM, "S0614TZR7")),
        ("slack", "<!subteam^S0614TZR7>", Mention(MentionKind.SUBTEAM, "S0614TZR7")),
        ("slack", "S0614TZR7", Mention(MentionKind.SUBTEAM, "S0614TZR7")),
        ("slack", "<!here>", Mention(MentionKind.HERE)),
        ("slack", "<!here|here>", Mention(MentionKind.HERE)),
        ("slack", "@here", Mention(MentionKind.HERE)),
        ("slack", "<!channel>", Mention(MentionKind.CHANNEL)),
        ("slack", "@channel", Mention(MentionKind.CHANNEL)),
        ("console", f"<@&{ROLE}>", Mention(MentionKind.ROLE, ROLE)),
        ("console", "@here", Mention(MentionKind.HERE)),
    ],
)
def test_what_people_type_becomes_a_typed_mention(
    platform: str, typed: str, expected: Mention
) -> None:
    parsed = parse_mention(typed, platform=platform)
    assert parsed == expected
    assert Mention.from_stored(parsed.stored()) == parsed


@pytest.mark.parametrize(
    ("platform", "typed"),
    [
        ("discord", "@everyone"),
        ("discord", "@here"),
        ("discord", "<@123456789>"),
        ("discord", "<@!123456789>"),
        ("discord", "@ai-alerts"),
        ("discord", "<!subteam^S0614TZR7>"),
        ("discord", "123"),  # too short for a snowflake
        ("slack", "<!everyone>"),
        ("slack", "@everyone"),
        ("slack", "@oncall"),
        ("slack", "<@U0614TZR7>"),
        ("slack", f"<@&{ROLE}>"),
        ("slack", "<!subteam^S1|x> and more"),
        ("slack", ""),
    ],
)
def test_anything_else_is_a_friendly_error(platform: str, typed: str) -> None:
    with pytest.raises(MentionError, match=r"^mention must be .+\.$"):
        parse_mention(typed, platform=platform)


def test_canonical_forms() -> None:
    assert Mention(MentionKind.ROLE, ROLE).stored() == f"role:{ROLE}"
    assert Mention(MentionKind.SUBTEAM, "S0614TZR7").stored() == "subteam:S0614TZR7"
    assert Mention(MentionKind.HERE).stored() == "here"
    assert Mention(MentionKind.ROLE, ROLE).platform == "discord"
    assert Mention(MentionKind.CHANNEL).platform == "slack"


@pytest.mark.parametrize(
    "stored", [None, "", "<@&123456789>", "role:abc", "role:", "subteam:S1|x", "here:1", "user:1"]
)
def test_unreadable_stored_values_are_no_mention(stored: str | None) -> None:
    assert Mention.from_stored(stored) is None


LEGACY = {
    "<@&123456789012>": "role:123456789012",
    "123456789012": "role:123456789012",
    "<!subteam^S0614TZR7>": "subteam:S0614TZR7",
    "<!subteam^S0614TZR7|@oncall>": "subteam:S0614TZR7",
    "role:555555555": "role:555555555",  # already canonical: left as it is
    "@everyone": None,  # names no mention: cleared, with a log line
    "<@42>": None,
}


def _downgrade(connection: Connection, revision: str) -> None:
    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def test_migration_converts_stored_markup(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine: AsyncEngine = create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        async with engine.begin() as connection:  # back to before typed mentions
            await connection.run_sync(_downgrade, "0012")
        async with engine.begin() as connection:
            for number, value in enumerate(LEGACY, start=1):
                await connection.execute(
                    text(
                        "INSERT INTO subscriptions (platform, community_id, channel_id, "
                        "service_id, components, min_severity, mention_role, early_warnings, "
                        "maintenance, alternatives, enabled, created_at) VALUES ('discord', 'g', "
                        ":channel, 'svc', '', 'minor', :mention, false, true, true, true, "
                        "'2026-11-27 12:00:00+00:00')"
                    ),
                    {"channel": f"c{number}", "mention": value},
                )
        await migrate.upgrade(engine)
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT channel_id, mention_role FROM subscriptions ORDER BY id")
                )
            ).all()
        assert [value for _, value in rows] == list(LEGACY.values())
        assert all(Mention.from_stored(value) is not None for value in LEGACY.values() if value)
        assert "names no role; cleared" in caplog.text
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        if engine.dialect.name == "postgresql":  # the PostgreSQL database outlives the test
            await empty_tables(engine)
        await engine.dispose()
