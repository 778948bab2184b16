"""The neutral command layer: parsing typed lines, option validation, dispatch that never raises."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.core.commands import (
    Actor,
    CommandOutcome,
    CommandRegistry,
    CommandSpec,
    Context,
    Invocation,
    OptionKind,
    OptionSpec,
    Reply,
    Tone,
    UserFacingError,
    dispatch,
)
from bot.core.rich import Quoted, rich, to_plain
from bot.core.textcommand import parse_command_line
from bot.testing import TestAdapter

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def echo(
    ctx: Context[None], service: str | None, days: int | None, text: str | None
) -> Reply:
    return Reply(body=rich(f"service={service} days={days} text=", Quoted(text or "")))


async def explode(ctx: Context[None]) -> Reply:
    raise RuntimeError("database on fire: password=hunter2")


async def admin_only(ctx: Context[None]) -> Reply:
    return Reply(body=rich("done"))


@pytest.fixture
def registry() -> CommandRegistry:
    registry = CommandRegistry()
    registry.add(
        CommandSpec(
            "echo",
            "echo options",
            echo,
            options=(
                OptionSpec("service", "a service", kind=OptionKind.SERVICE, required=True),
                OptionSpec("days", "days", kind=OptionKind.INTEGER, min_value=1, max_value=90),
                OptionSpec("text", "free text", max_length=50),
            ),
        )
    )
    registry.add(CommandSpec("explode", "fails", explode))
    registry.add(CommandSpec("admin", "admins only", admin_only, admin_only=True))
    return registry


def invocation(
    command: str, options: dict[str, str] | None = None, *, admin: bool = False
) -> Invocation:
    return Invocation(
        command=command,
        options=options or {},
        actor=Actor(platform="test", user_id="u1", is_admin=admin),
        community_id="c1",
    )


async def run(registry: CommandRegistry, line: str, *, admin: bool = False) -> str:
    reply = await TestAdapter(registry, lambda: NOW, community="c1").run(line, admin=admin)
    return to_plain(reply.body, NOW)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/echo openai", ("echo", {"service": "openai"})),
        (
            "echo openai 7 it is slow today",
            ("echo", {"service": "openai", "days": "7", "text": "it is slow today"}),
        ),
        ("/echo openai days:3", ("echo", {"service": "openai", "days": "3"})),
        (
            "/echo service=claude text='quoted words'",
            ("echo", {"service": "claude", "text": "quoted words"}),
        ),
        ("/ECHO openai", ("echo", {"service": "openai"})),
        ('/echo "unbalanced', ("echo", {"service": '"unbalanced'})),
        ("/nosuch a b", ("nosuch", {})),
    ],
)
def test_parse_command_line(
    registry: CommandRegistry, line: str, expected: tuple[str, dict[str, str]]
) -> None:
    assert parse_command_line(registry, line) == expected


def test_parse_rejects_extra_words_and_huge_lines(registry: CommandRegistry) -> None:
    with pytest.raises(UserFacingError):
        parse_command_line(registry, "/explode now please")
    with pytest.raises(UserFacingError, match="too long"):
        parse_command_line(registry, "/echo " + "x" * 5000)
    with pytest.raises(UserFacingError):
        parse_command_line(registry, "   ")


async def test_dispatch_converts_and_validates(registry: CommandRegistry) -> None:
    assert await run(registry, "/echo openai 7") == "service=openai days=7 text="
    assert "whole number" in await run(registry, "/echo openai seven")
    assert "between 1 and 90" in await run(registry, "/echo openai 900")
    assert "needs a service" in await run(registry, "/echo")
    assert "too long" in await run(registry, "/echo openai 1 " + "y" * 60)


async def test_unknown_option_and_command_are_explained(registry: CommandRegistry) -> None:
    reply = await dispatch(
        registry, invocation("echo", {"service": "x", "colour": "red"}), None, NOW
    )
    assert reply.ephemeral
    assert reply.tone is Tone.WARNING
    assert "no option “colour”" in to_plain(reply.body, NOW)
    reply = await dispatch(registry, invocation("@everyone"), None, NOW)
    assert reply.ephemeral
    assert Quoted("@everyone") in reply.body  # echoed input is marked untrusted for renderers


async def test_admin_commands_refuse_members(registry: CommandRegistry) -> None:
    assert "Only server admins" in await run(registry, "/admin")
    assert await run(registry, "/admin", admin=True) == "done"


async def test_handler_crash_becomes_a_friendly_reply(
    registry: CommandRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        reply = await dispatch(registry, invocation("explode"), None, NOW)
    text = to_plain(reply.body, NOW)
    assert "Something went wrong on our side" in text
    assert "Traceback" not in text
    assert "hunter2" not in text
    assert any(r.exc_info for r in caplog.records)  # the traceback went to the log


async def test_control_and_invisible_characters_are_dropped(registry: CommandRegistry) -> None:
    text = await run(registry, "/echo open\u200bai 1 hi\x00\x1b[31mthere\u202e")
    assert text == "service=openai days=1 text=hi[31mthere"


@pytest.mark.parametrize(
    ("command", "options", "admin", "named", "outcome"),
    [
        ("echo", {"service": "openai"}, False, "echo", CommandOutcome.OK),
        ("echo", {}, False, "echo", CommandOutcome.REFUSED),
        ("admin", {}, False, "admin", CommandOutcome.DENIED),
        ("nosuch", {}, False, "unknown", CommandOutcome.UNKNOWN),
        ("explode", {}, False, "explode", CommandOutcome.ERROR),
    ],
)
async def test_every_answer_tells_its_outcome(
    registry: CommandRegistry,
    command: str,
    options: dict[str, str],
    admin: bool,
    named: str,
    outcome: CommandOutcome,
) -> None:
    told: list[tuple[str, CommandOutcome]] = []
    registry.on_answered = lambda name, result, _seconds: told.append((name, result))
    await dispatch(registry, invocation(command, options, admin=admin), None, NOW)
    assert told == [(named, outcome)]
    assert isinstance(told[0][1], CommandOutcome)


def test_registry_refuses_duplicates(registry: CommandRegistry) -> None:
    with pytest.raises(ValueError, match="twice"):
        registry.add(CommandSpec("echo", "again", echo))
