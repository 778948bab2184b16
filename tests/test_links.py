"""WebLink: the one check of a reply's links, so every renderer can use them as they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.adapters import console_render
from bot.adapters.discord import render as discord_render
from bot.adapters.slack import render as slack_render
from bot.core.commands import Button, Reply
from bot.core.links import MAX_WEB_LINK, WebLink

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("https://status.openai.com", "https://status.openai.com"),
        ("  http://127.0.0.1:8080/x?a=1&b=2#c ", "http://127.0.0.1:8080/x?a=1&b=2#c"),
        ("https://status.openai.com/x y", "https://status.openai.com/x%20y"),
        # What ends a link in Discord markdown, Slack mrkdwn or a terminal is encoded.
        ('https://a.example/(x)|<y>"z\\', "https://a.example/%28x%29%7C%3Cy%3E%22z%5C"),
        ("https://a.example/%20", "https://a.example/%20"),  # already encoded: left as it is
    ],
)
def test_parse_encodes_what_links_cannot_hold(text: str, address: str) -> None:
    link = WebLink.parse(text)
    assert link is not None
    assert link.address == address


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "ftp://files.example/x",
        "javascript:alert(1)",
        "status.openai.com",  # no scheme
        "https://status.openai.com@evil.example/",  # opens evil.example
        "https://bücher.example/",  # a host that would be re-read as another
        "https://a.example/" + "x" * MAX_WEB_LINK,
    ],
)
def test_parse_refuses_what_is_no_plain_web_link(text: str | None) -> None:
    assert WebLink.parse(text) is None


def test_a_link_is_checked_when_made() -> None:
    with pytest.raises(ValueError, match="not a web link"):
        WebLink("https://a.example/x y")
    with pytest.raises(ValueError, match="not a web link"):
        WebLink("javascript:alert(1)")


def test_every_renderer_uses_the_checked_address_as_it_is() -> None:
    link = WebLink.parse("https://status.example.com/a (b)")
    assert link is not None
    reply = Reply(title="t", buttons=(Button("Page", url=link),), url=link)
    discord = discord_render.render_reply(reply, NOW)
    assert discord.embed.url == link.address
    assert [b.url for b in discord.buttons] == [link.address]
    slack = slack_render.render_reply(reply, NOW)
    assert [e["url"] for e in slack.blocks[-1]["elements"]] == [link.address]
    assert f"[Page] {link.address}" in console_render.render_reply(reply, NOW)
