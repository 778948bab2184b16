"""One layout step: a reply too long for a platform loses the same content everywhere."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from bot.adapters import console_render
from bot.adapters.discord import render as discord_render
from bot.adapters.slack import render as slack_render
from bot.core.commands import Reply, ReplyField
from bot.core.layout import (
    CONSOLE_LIMITS,
    DISCORD_LIMITS,
    ELLIPSIS,
    REPLY_LIMITS,
    SLACK_LIMITS,
    Limits,
    fit_reply,
    fit_text,
    tightest,
)
from bot.core.links import WebLink
from bot.core.rich import Link, Plain, Quoted, RichText, Strong, When, rich

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
URL = "https://status.example.com/incidents/1"
TOKEN = re.compile(r"\b(?:w\d{4}|f\d\d|v\d\d-\d\d)\b")


def length(text: RichText) -> int:
    """A measure where words count their letters and a timestamp or link counts 20."""
    return sum(len(s.text) if isinstance(s, Plain | Quoted | Strong) else 20 for s in text)


def words(prefix: str, count: int) -> str:
    return " ".join(f"{prefix}{i:02d}" for i in range(count))


def long_reply() -> Reply:
    """Plain words (no escaping anywhere), with more fields than any platform shows."""
    fields = tuple(ReplyField(f"f{i:02d}", rich(words(f"v{i:02d}-", 40))) for i in range(40))
    body = " ".join(f"w{i:04d}" for i in range(300))
    return Reply(title="Everything", body=rich(body), fields=fields, url=WebLink(URL))


def shown_tokens(text: str) -> set[str]:
    return set(TOKEN.findall(text))


def discord_tokens(reply: Reply) -> set[str]:
    embed = discord_render.render_reply(reply, NOW).embed
    parts = [embed.description or "", *(f"{f.name} {f.value}" for f in embed.fields)]
    return shown_tokens("\n".join(parts))


def texts(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from [value] if key == "text" and isinstance(value, str) else texts(value)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item)


def slack_tokens(reply: Reply) -> set[str]:
    return shown_tokens("\n".join(texts(slack_render.render_reply(reply, NOW).blocks)))


def console_tokens(reply: Reply) -> set[str]:
    return shown_tokens(console_render.render_reply(reply, NOW))


def test_the_same_long_reply_loses_the_same_content_on_every_platform() -> None:
    reply = long_reply()
    discord, slack, console = discord_tokens(reply), slack_tokens(reply), console_tokens(reply)
    assert discord == slack == console
    assert {"w0000", "w0299", "f00", "v00-39"} <= discord
    assert "f39" not in discord  # later fields go first, the same ones everywhere
    assert "f24" not in discord  # not only past the field count: the total counts too


def kept_words(text: str) -> list[str]:
    """The words of a cut text before its "…", in order."""
    before, marker, _ = text.partition(ELLIPSIS)
    assert marker, "the text was not cut"
    return before.split()


def test_a_long_body_keeps_the_same_words_before_the_cut_on_every_platform() -> None:
    lines = [f"w{i:04d} operational" for i in range(2000)]  # the status of many services
    reply = replace(long_reply(), body=rich("\n".join(lines)), fields=())
    discord = discord_render.render_reply(reply, NOW).embed.description or ""
    slack = slack_render.render_reply(reply, NOW)
    sections = [b["text"]["text"] for b in slack.blocks if b["type"] == "section"]
    console = console_render.render_reply(reply, NOW).split("\n", 1)[1]  # after the title
    kept = kept_words(discord)
    assert kept == kept_words(" ".join(sections)) == kept_words(console)
    assert kept[:2] == ["w0000", "operational"]
    assert "w1999" not in kept
    assert len(kept) > 400  # most of what Discord's 4,096 hold (18 per line), not a few
    assert discord.endswith(f"…\n[Read more]({URL})")
    assert sections[-1].endswith(f"…\n<{URL}|Read more>")


def test_every_platform_points_to_more_when_it_cuts() -> None:
    reply = long_reply()
    assert discord_render.render_reply(reply, NOW).embed.fields[-1].value == f"[Read more]({URL})"
    assert f"<{URL}|Read more>" in json.dumps(slack_render.render_reply(reply, NOW).blocks)
    assert f"…:\n  Read more <{URL}>" in console_render.render_reply(reply, NOW)


def test_a_reply_within_the_limits_is_left_as_it_is() -> None:
    reply = Reply(title="t", body=rich("short"), fields=(ReplyField("a", rich("b")),))
    fitted = fit_reply(reply, length)
    assert fitted.reply == reply
    assert not fitted.truncated


def test_later_fields_are_dropped_for_the_total_and_a_note_says_so() -> None:
    limits = Limits(total=60)
    fields = tuple(ReplyField(f"n{i}", rich("v" * 5)) for i in range(10))
    fitted = fit_reply(Reply(fields=fields), length, limits=limits, reserved=5)
    names = [f.name for f in fitted.reply.fields]
    assert names == ["n0", "n1", "n2", "…"]
    assert fitted.reply.fields[-1].value == rich("Some details were left out.")
    assert fitted.truncated


def test_a_cut_never_splits_a_timestamp_or_a_link() -> None:
    at = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    fitted, cut = fit_text(rich("since ", When(at), " see ", Link("page", URL)), 25, length)
    assert cut
    assert fitted == rich("since", "…")  # the timestamp does not fit whole: it goes whole
    fitted, _ = fit_text(rich("since ", When(at), " see ", Link("page", URL)), 32, length)
    assert fitted == rich("since ", When(at), " see", "…")


def test_limits_are_data_and_the_tightest_wins() -> None:
    assert tightest(DISCORD_LIMITS, SLACK_LIMITS, CONSOLE_LIMITS) == REPLY_LIMITS
    assert REPLY_LIMITS == DISCORD_LIMITS  # Discord's embed is the smallest room
    assert (
        Limits(
            body=discord_render.DESCRIPTION_LIMIT,
            field_count=discord_render.FIELD_COUNT_LIMIT,
            field_name=discord_render.FIELD_NAME_LIMIT,
            field_value=discord_render.FIELD_VALUE_LIMIT,
            total=discord_render.EMBED_TOTAL_LIMIT,
        )
        == DISCORD_LIMITS
    )


def test_slack_splits_a_long_paragraph_across_sections_instead_of_cutting_it() -> None:
    words = " ".join(f"w{i:04d}" for i in range(600))  # 3,599 characters on one line
    pieces = slack_render.split_sections(words)
    assert [len(p) <= slack_render.MAX_SECTION for p in pieces] == [True, True]
    assert " ".join(pieces) == words
