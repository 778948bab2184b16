"""Reply → Discord message: limits, escaping, timestamps, buttons (pure, no network)."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.adapters.discord.render import (
    CUSTOM_ID_LIMIT,
    EMBED_TOTAL_LIMIT,
    TONE_COLOUR,
    escape_untrusted,
    render_reply,
)
from bot.core.commands import Button, Reply, ReplyField, Tone
from bot.core.links import WebLink
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Link, Quoted, Strong, When, rich

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
URL = "https://status.example.com/incidents/1"


def test_colour_follows_tone_and_nobody_is_pinged() -> None:
    message = render_reply(Reply(title="t", tone=Tone.DANGER), NOW)
    assert message.embed.colour is not None
    assert message.embed.colour.value == TONE_COLOUR[Tone.DANGER]
    assert message.payload()["allowed_mentions"] == {"parse": []}


def test_quoted_text_cannot_mention_or_format() -> None:
    reply = Reply(
        body=rich("said: ", Quoted("@everyone @here <@&1> <@42> <#7> **bold** [x](http://e)"))
    )
    text = render_reply(reply, NOW).embed.description or ""
    for token in ("@everyone", "@here", "<@&", "<@4", "<#", "**bold**"):
        assert token not in text
    assert "said: " in text
    assert "\\[x](http://e)" in text  # an escaped masked link shows as text
    assert escape_untrusted("a_b") == "a\\_b"


def test_timestamps_and_links() -> None:
    at = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    reply = Reply(
        body=rich(
            "since ", When(at), " (", When(at, "datetime"), ") ", Link("page", URL), Strong("Acme")
        )
    )
    text = render_reply(reply, NOW).embed.description
    assert (
        text
        == f"since <t:{int(at.timestamp())}:R> (<t:{int(at.timestamp())}:f>) [page]({URL})**Acme**"
    )


def test_oversize_reply_fits_every_limit_and_links_to_more() -> None:
    reply = Reply(
        title="T" * 400,
        body=rich(Quoted("word " * 3000)),
        fields=tuple(ReplyField(name="N" * 300, value=rich(Quoted("v " * 800))) for _ in range(40)),
        footer=rich("f" * 3000),
        url=WebLink(URL),
        buttons=tuple(Button(label="L" * 100, action=f"status s{i}") for i in range(30)),
    )
    message = render_reply(reply, NOW)
    embed = message.embed
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    assert (embed.description or "").endswith(f"…\n[Read more]({URL})")
    assert len(embed.fields) <= 25
    assert all(len(f.name or "") <= 256 and len(f.value or "") <= 1024 for f in embed.fields)
    assert len(embed) <= 6000
    assert message.truncated
    assert len(message.buttons) <= 25
    assert all(len(b.label) <= 80 for b in message.buttons)
    assert all(len(row["components"]) <= 5 for row in message.components())


def test_cut_never_splits_a_timestamp() -> None:
    at = datetime(2026, 11, 27, 11, 0, tzinfo=UTC)
    reply = Reply(body=rich("x" * 4090, When(at)))
    text = render_reply(reply, NOW).embed.description or ""
    assert "<t:" not in text
    assert text.endswith("…")
    assert len(text) <= 4096


def test_buttons_link_or_action_with_stable_custom_ids() -> None:
    reply = Reply(
        buttons=(
            Button(label="Status page", url=WebLink("https://status.openai.com")),
            Button(label="Refresh", action="status openai-api"),
            Button(label="Too long", action="x" * 200),
        )
    )
    message = render_reply(reply, NOW)
    components = message.components()[0]["components"]
    assert components == [
        {"type": 2, "style": 5, "label": "Status page", "url": "https://status.openai.com"},
        {"type": 2, "style": 2, "label": "Refresh", "custom_id": "ob:status openai-api"},
    ]
    assert all(len(b.custom_id or "") <= CUSTOM_ID_LIMIT for b in message.buttons)


async def test_view_is_persistent_and_keeps_no_state() -> None:
    message = render_reply(Reply(buttons=(Button(label="Refresh", action="status"),)), NOW)
    view = message.view()
    assert view is not None
    assert view.timeout is None
    assert view.is_finished()  # never stored per message: on_interaction routes `ob:` clicks
    assert view.to_components()[0]["components"][0]["custom_id"] == "ob:status"


def test_chart_becomes_an_attachment_shown_in_the_embed() -> None:
    message = render_reply(Reply(title="c", image_png=b"png", image_alt="chart"), NOW)
    assert message.embed.image.url == "attachment://chart.png"
    file = message.file()
    assert file is not None
    assert file.filename == "chart.png"
    assert message.payload()["attachments"][0]["filename"] == "chart.png"


def test_role_mention_is_the_only_allowed_one() -> None:
    role = Mention(MentionKind.ROLE, "123456789012345678")
    message = render_reply(Reply(title="alert"), NOW, mention=role)
    assert message.content == "<@&123456789012345678>"
    assert message.payload()["allowed_mentions"] == {
        "parse": [],
        "roles": [123456789012345678],
    }


def test_only_a_role_pings_on_discord() -> None:
    for other in (Mention(MentionKind.HERE), Mention(MentionKind.SUBTEAM, "S0614TZR7")):
        message = render_reply(Reply(title="alert"), NOW, mention=other)
        assert message.content is None
        assert message.payload()["allowed_mentions"] == {"parse": []}


def test_the_footer_marker_is_counted_before_fitting() -> None:
    marker = "ref 0123456789"
    reply = Reply(
        title="t" * 256,
        body=rich("b" * 4096),
        fields=tuple(ReplyField(f"n{i}", rich("v" * 300)) for i in range(10)),
        footer=rich("f" * 2000),
    )
    message = render_reply(reply, NOW, marker=marker)
    assert len(message.embed) <= EMBED_TOTAL_LIMIT  # as discord.py counts
    assert message.embed.footer.text is not None
    assert message.embed.footer.text.endswith(" · " + marker)
    assert len(message.embed.footer.text) <= 2048
    assert render_reply(Reply(title="t"), NOW, marker=marker).embed.footer.text == marker
