"""One invocation pipeline: every adapter parses, builds the invocation and answers errors alike."""

from __future__ import annotations

import ast
import io
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from bot.adapters.console import ConsoleAdapter
from bot.adapters.console_render import render_reply
from bot.core.commands import (
    Actor,
    CommandRegistry,
    CommandSpec,
    Context,
    OptionSpec,
    Reply,
    Tone,
    error_reply,
)
from bot.core.ids import ChannelId, CommunityId, UserId
from bot.core.pipeline import Call, CommandPipeline, Line, Origin, Submission
from bot.core.rich import Quoted, rich
from bot.services.deps import AppDeps
from bot.testing import TestAdapter, reply_text
from tests.conftest import REPO, FakeClock

ORIGIN = Origin(
    actor=Actor(platform="test", user_id=UserId("u1")),
    community_id=CommunityId("g1"),
    channel_id=ChannelId("c1"),
    raw="event",
)


async def echo(ctx: Context[Any], *, what: str | None, note: str | None) -> Reply:
    where = ctx.invocation
    said = f"{what}/{note} by {where.actor.user_id} in {where.community_id}/{where.channel_id}"
    return Reply(body=rich(Quoted(f"{said} raw={where.raw}")))


def registry() -> CommandRegistry:
    commands = CommandRegistry()
    options = (OptionSpec("what", "what"), OptionSpec("note", "note"))
    commands.add(CommandSpec(name="echo", description="echo", handler=echo, options=options))
    return commands


def pipeline(clock: FakeClock) -> CommandPipeline:
    return CommandPipeline(registry(), None, clock)


def text(reply: Reply, clock: FakeClock) -> str:
    return reply_text(reply, clock.now).strip()


async def test_every_source_reaches_the_handler_with_its_origin(clock: FakeClock) -> None:
    run = pipeline(clock)
    line = await run.answer(Line("/echo what:a b c"), ORIGIN)
    call = await run.answer(Call("echo", {"what": "a", "note": "b c"}), ORIGIN)
    form = await run.answer(Submission("echo what:a", {"what": "x", "note": "b c"}), ORIGIN)
    expected = "a/b c by u1 in g1/c1 raw=event"
    assert text(line, clock) == text(call, clock) == text(form, clock) == expected


async def test_a_line_that_does_not_parse_is_refused_before_anyone_is_asked(
    clock: FakeClock,
) -> None:
    asked: list[object] = []

    async def origin(spec: CommandSpec | None) -> Origin:
        asked.append(spec)
        return ORIGIN

    reply = await pipeline(clock).answer(Line("   "), origin)
    assert reply == error_reply("Type a command, for example /status or /help.")
    assert reply.tone is Tone.WARNING
    assert reply.ephemeral
    assert asked == []


async def test_the_origin_is_asked_for_the_command_and_may_refuse(clock: FakeClock) -> None:
    asked: list[str | None] = []
    refusal = error_reply("I couldn't tell who asked.")

    async def origin(spec: CommandSpec | None) -> Origin | Reply:
        asked.append(spec.name if spec else None)
        return refusal if spec is None else ORIGIN

    run = pipeline(clock)
    assert await run.answer(Line("/nope"), origin) == refusal
    assert text(await run.answer(Line("echo hi"), origin), clock).startswith("hi/None by u1")
    assert asked == [None, "echo"]


async def test_console_and_test_adapter_answer_a_bad_line_the_same_way(clock: FakeClock) -> None:
    commands = registry()
    deps = cast(AppDeps, SimpleNamespace(registry=commands))
    console = ConsoleAdapter(
        deps=deps, clock=clock, stdin=io.BytesIO(), write=lambda _: None, on_quit=lambda: None
    )
    tester = TestAdapter(commands, clock, deps=deps)
    for line in ("/nope", "/echo " + "x" * 3000, "/echo note:" + "y" * 600):
        assert await console.answer(line) == render_reply(await tester.run(line), clock.now)


def names_adapters_use(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module in {"bot.core.commands", "bot.core.textcommand"}
        for alias in node.names
    }


def test_no_adapter_parses_or_dispatches_on_its_own() -> None:
    # Parsing, building the Invocation and dispatching happen in the pipeline only.
    own_path = {"dispatch", "Invocation", "parse_command_line", "form_options", "answer_line"}
    modules = [*sorted((REPO / "bot" / "adapters").rglob("*.py")), REPO / "bot" / "testing.py"]
    found = {
        str(path.relative_to(REPO)): used
        for path in modules
        if (used := names_adapters_use(path) & own_path)
    }
    assert found == {}
