"""The shipped test adapter (bot.testing): the console's path, the actor a test chooses."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionSpec,
    Reply,
    ReplyField,
    Tone,
)
from bot.core.rich import rich
from bot.testing import TestAdapter, headline_text, reply_text

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


async def whoami(ctx: Context[None], note: str | None) -> Reply:
    actor, invocation = ctx.invocation.actor, ctx.invocation
    return Reply(
        title="Who",
        body=rich(f"{actor.platform}/{actor.user_id} in {invocation.community_id}"),
        fields=(ReplyField("channel", rich(str(invocation.channel_id))),),
        footer=rich(f"admin={actor.is_admin} roles={','.join(actor.roles)} note={note}"),
    )


def registry() -> CommandRegistry:
    commands = CommandRegistry()
    commands.add(CommandSpec("whoami", "who runs this", whoami, (OptionSpec("note", "free"),)))
    return commands


async def test_a_line_runs_as_the_default_actor_unless_told_otherwise() -> None:
    bot = TestAdapter(registry(), lambda: NOW, community="A", channel="ch")
    assert reply_text(await bot.run("/whoami hello there"), NOW) == (
        "Who\ntest/u1 in A\nchannel: ch\nadmin=False roles= note=hello there"
    )
    other = await bot.run(
        "whoami", platform="slack", user="U9", community="T1", admin=True, roles=("r1",)
    )
    assert bot.plain(other) == "Who\nslack/U9 in T1\nchannel: ch\nadmin=True roles=r1 note=None"


async def test_an_empty_user_id_is_kept_not_replaced_by_the_default() -> None:
    bot = TestAdapter(registry(), lambda: NOW)
    reply = await bot.invoke("whoami", user="", channel="")
    assert headline_text(reply, NOW) == "Who\ntest/ in g1"
    assert "channel: \n" in reply_text(reply, NOW)


async def test_a_line_that_does_not_parse_is_refused_like_any_refusal() -> None:
    bot = TestAdapter(registry(), lambda: NOW)
    refused = await bot.run("whoami note:a 'b")  # the note takes "a"; "'b" is left over
    assert refused.tone is Tone.WARNING
    assert refused.ephemeral
    assert "I didn't understand" in bot.plain(refused)
    assert "I don't know the command" in await bot.text("nosuch")
    assert "Type a command" in await bot.text("   ")
