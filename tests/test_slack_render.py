"""Reply → Block Kit: limits, escaping of untrusted text, buttons, fallback text."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest

from bot.adapters.slack.render import (
    MAX_BLOCKS,
    MAX_HEADER,
    MAX_SECTION,
    cut,
    format_mention,
    render_reply,
    to_mrkdwn,
)
from bot.core.commands import Button, Reply, ReplyField
from bot.core.links import WebLink
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Link, Quoted, Strong, When, rich

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
INJECTION = "<!channel> <@U123> <!here> <https://evil.example|click> @everyone *bold* &amp;"


def all_text(blocks: list[dict[str, object]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_quoted_text_cannot_mention_link_or_format() -> None:
    text = to_mrkdwn(rich("From the page: ", Quoted(INJECTION)), NOW)
    assert "<!channel>" not in text
    assert "<@U123>" not in text
    assert "<!here>" not in text
    assert "<https://" not in text
    assert "<" not in text.split("From the page: ")[1]
    assert "&lt;!channel&gt;" in text
    assert "&amp;amp;" in text
    assert "@everyone" not in text  # a zero-width space breaks the bare word
    assert "*bold*" not in text


def test_our_own_emphasis_links_and_dates_render_as_mrkdwn() -> None:
    text = to_mrkdwn(
        rich(
            Strong("OpenAI"),
            " is down since ",
            When(datetime(2026, 11, 27, 11, 0, tzinfo=UTC)),
            " — ",
            Link("status <page>", "https://status.openai.com/x y"),
        ),
        NOW,
    )
    assert text.startswith("*OpenAI* is down since <!date^1795777200^")
    assert "{date_short_pretty} {time}|" in text
    assert "<https://status.openai.com/x%20y|status &lt;page&gt;>" in text


def test_a_link_to_a_non_http_url_is_only_text() -> None:
    text = to_mrkdwn(rich(Link("run me", "javascript:alert(1)")), NOW)
    assert text == "run me"


def test_header_fields_footer_and_buttons() -> None:
    reply = Reply(
        title="x" * 400,
        body=rich("body"),
        fields=(
            ReplyField("API", rich("🟢 ok")),
            ReplyField("Chat", rich("🔴 down"), inline=False),
        ),
        footer=rich("Checked ", When(NOW)),
        buttons=(
            Button("Status", action="status openai-api"),
            Button("Status again", action="status openai-api"),  # duplicate id: dropped
            Button("Page", url=WebLink("https://status.openai.com")),
        ),
        url=WebLink("https://status.openai.com"),
    )
    message = render_reply(reply, NOW)
    types = [b["type"] for b in message.blocks]
    assert types == ["header", "section", "section", "section", "context", "actions"]
    header = message.blocks[0]["text"]["text"]
    assert len(header) <= MAX_HEADER
    assert header.endswith("…")
    elements = message.blocks[-1]["elements"]
    assert [e.get("action_id") for e in elements] == ["ob:status openai-api", "oblink:2"]
    assert elements[1]["url"] == "https://status.openai.com"
    assert message.text.startswith("x")


def test_many_fields_split_into_sections_of_ten() -> None:
    reply = Reply(fields=tuple(ReplyField(f"c{i}", rich("ok")) for i in range(23)))
    blocks = render_reply(reply, NOW).blocks
    assert [len(b["fields"]) for b in blocks] == [10, 10, 3]


def test_an_oversize_reply_stays_within_every_limit() -> None:
    line = "word &<> " * 50
    reply = Reply(
        title="Huge",
        body=rich(*[Quoted(line + "\n") for _ in range(400)]),
        fields=tuple(ReplyField(f"f{i}", rich(Quoted("v" * 5000))) for i in range(60)),
        footer=rich("f" * 9000),
        buttons=tuple(Button(f"b{i}", action=f"status s{i}") for i in range(30)),
    )
    message = render_reply(reply, NOW)
    assert len(message.blocks) <= MAX_BLOCKS
    assert message.blocks[-1]["type"] == "actions"
    for block in message.blocks:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= MAX_SECTION
        for item in block.get("fields", []):
            assert len(item["text"]) <= 2000
        for element in block.get("elements", []):
            assert len(element.get("text", "")) <= 3000
    assert any("…" in all_text([b]) for b in message.blocks)
    assert len(message.text) <= 3000
    # Cutting never leaves a broken escape behind.
    assert not re.search(r"&(?:a|am|l|g|lt|gt|amp)?…", all_text(message.blocks))


def test_cut_never_splits_a_token_or_an_entity() -> None:
    assert cut("abc <https://x.example|label> tail", 12) == "abc…"
    assert cut("ab &amp; cd", 6) == "ab…"
    assert cut("short", 10) == "short"


def test_mention_is_put_before_the_body() -> None:
    group = Mention(MentionKind.SUBTEAM, "S0614TZR7")
    message = render_reply(Reply(body=rich("OpenAI is down")), NOW, mention=group)
    assert message.blocks[0]["text"]["text"] == "<!subteam^S0614TZR7> OpenAI is down"
    assert message.text.startswith("<!subteam^S0614TZR7>")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (Mention(MentionKind.SUBTEAM, "S0614TZR7"), "<!subteam^S0614TZR7>"),
        (Mention(MentionKind.HERE), "<!here>"),
        (Mention(MentionKind.CHANNEL), "<!channel>"),
        (Mention(MentionKind.SUBTEAM, "S1|evil>"), None),
        (Mention(MentionKind.ROLE, "123456789"), None),  # a Discord role has no Slack form
        (None, None),
    ],
)
def test_mention_targets(target: Mention | None, expected: str | None) -> None:
    assert format_mention(target) == expected


def test_an_empty_reply_still_renders_a_valid_message() -> None:
    message = render_reply(Reply(title="   ", buttons=(Button("Go", action="help"),)), NOW)
    assert [b["type"] for b in message.blocks] == ["section", "actions"]
    assert message.blocks[0]["text"]["text"] == message.text == "outagebot"
