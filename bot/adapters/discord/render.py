"""Reply → Discord message: one embed, a row of buttons, an optional chart, no pings.

Every limit Discord enforces is respected, so no send fails on size: `bot.core.layout` cuts the
body and fields (at a span, never inside a timestamp or link, ending with "…" and a link to
``Reply.url``) as it does for every platform; the title, footer and buttons are cut here.
Untrusted text (`Quoted`, link labels, service names) is markdown-escaped and its mentions
broken with a zero-width space; `allowed_mentions` is empty as well, so even a slip cannot ping.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import discord

from bot.core.commands import Form, Reply, Tone
from bot.core.layout import fit_reply
from bot.core.links import WebLink
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Link, Plain, Quoted, RichText, Span, Strong, When, to_plain
from bot.core.text import truncate

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_COUNT_LIMIT = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 1024  # Discord allows 2048; less keeps title + description + footer under 6000
EMBED_TOTAL_LIMIT = 6000
"""The embed limits above are also `bot.core.layout.DISCORD_LIMITS` (a test keeps them equal)."""
CONTENT_LIMIT = 2000
BUTTON_LABEL_LIMIT = 80
CUSTOM_ID_LIMIT = 100
MAX_BUTTONS = 25
ACTION_PREFIX = "ob:"
"""custom_id prefix of our action buttons; the rest is a command line, e.g. ``status openai``."""
FORM_PREFIX = "obf:"
"""custom_id prefix of our modals; the rest is the form's command line."""
MODAL_TITLE_LIMIT = 45
INPUT_LABEL_LIMIT = 45
INPUT_VALUE_LIMIT = 4000

IMAGE_NAME = "chart.png"
ZWSP = "\u200b"

TONE_COLOUR = {
    Tone.NEUTRAL: 0x95A5A6,
    Tone.OK: 0x2ECC71,
    Tone.INFO: 0x3498DB,
    Tone.WARNING: 0xE67E22,
    Tone.DANGER: 0xE74C3C,
}

# `<@id>`, `<@!id>`, `<@&id>`, `<#id>`, `</cmd:id>`, `<t:…>`, `<a:emoji:id>`: anything Discord
# would turn into a mention, a command link or a fake timestamp.
_ANGLE_TOKEN = re.compile(r"<(?=[@#/:]|a:|t:)")
_BROADCAST = re.compile(r"@(?=everyone|here)", re.IGNORECASE)


def escape_untrusted(text: str) -> str:
    """Text someone else wrote, made inert: no formatting, no mention, no masked link."""
    escaped = discord.utils.escape_markdown(text)
    escaped = _ANGLE_TOKEN.sub("<" + ZWSP, escaped)
    return _BROADCAST.sub("@" + ZWSP, escaped)


def render_span(span: Span) -> str:
    """One span in Discord markdown."""
    match span:
        case Plain(text):
            return text
        case Strong(text):
            return f"**{escape_untrusted(text)}**" if text.strip() else text
        case Quoted(text):
            return escape_untrusted(text)
        case When(at, style):
            return f"<t:{int(at.timestamp())}:{'R' if style == 'relative' else 'f'}>"
        case Link(label, url):
            target = WebLink.parse(url)
            shown = escape_untrusted(label.replace("[", "(").replace("]", ")"))
            if target is None:
                return shown
            return target.address if not label or label == url else f"[{shown}]({target.address})"
    return ""  # pragma: no cover - Span is closed


def render_text(text: RichText) -> str:
    """Rich text in Discord markdown, no limit."""
    return "".join(render_span(span) for span in text)


def measure(text: RichText) -> int:
    """Characters ``text`` takes in Discord markdown (what the layout counts)."""
    return len(render_text(text))


@dataclass(frozen=True, slots=True)
class RenderedButton:
    """A button as Discord shows it: a link (``url``) or an action (``custom_id``)."""

    label: str
    url: str | None = None
    custom_id: str | None = None

    def to_component(self) -> dict[str, Any]:
        """The button as a raw API component."""
        if self.url is not None:
            return {"type": 2, "style": 5, "label": self.label, "url": self.url}
        return {"type": 2, "style": 2, "label": self.label, "custom_id": self.custom_id}


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """A rendered reply, usable by discord.py (interactions) and by raw REST (the outbox)."""

    embed: discord.Embed
    buttons: tuple[RenderedButton, ...] = ()
    content: str | None = None
    image_png: bytes | None = None
    image_alt: str = ""
    ephemeral: bool = False
    mention_role: str | None = None
    truncated: bool = False

    @property
    def allowed_mentions(self) -> discord.AllowedMentions:
        """Nobody is pinged, except the alert role the channel's subscription names."""
        if self.mention_role is None:
            return discord.AllowedMentions.none()
        return discord.AllowedMentions(
            everyone=False,
            users=False,
            roles=[discord.Object(id=int(self.mention_role))],
            replied_user=False,
        )

    def view(self) -> discord.ui.View | None:
        """A stateless view (call inside the event loop); clicks route by custom_id prefix."""
        if not self.buttons:
            return None
        view = discord.ui.View(timeout=None)
        for button in self.buttons:
            if button.url is not None:
                view.add_item(discord.ui.Button(label=button.label, url=button.url))
            else:
                view.add_item(
                    discord.ui.Button(
                        label=button.label,
                        custom_id=button.custom_id,
                        style=discord.ButtonStyle.secondary,
                    )
                )
        # Stopped before it is sent, so discord.py keeps no per-message state: the adapter's
        # on_interaction handles every `ob:` click, which is what makes buttons survive restarts.
        view.stop()
        return view

    def file(self) -> discord.File | None:
        """The chart as an attachment (a fresh one per send: a File is read once)."""
        if self.image_png is None:
            return None
        return discord.File(
            io.BytesIO(self.image_png), filename=IMAGE_NAME, description=self.image_alt or None
        )

    def components(self) -> list[dict[str, Any]]:
        """Buttons as raw action rows, five per row."""
        rows = [self.buttons[i : i + 5] for i in range(0, len(self.buttons), 5)]
        return [{"type": 1, "components": [b.to_component() for b in row]} for row in rows]

    def payload(self) -> dict[str, Any]:
        """The JSON body of a REST message create/edit (attachments go alongside)."""
        body: dict[str, Any] = {
            "content": self.content or "",
            "embeds": [self.embed.to_dict()],
            "components": self.components(),
            "allowed_mentions": self.allowed_mentions.to_dict(),
        }
        if self.image_png is not None:
            body["attachments"] = [
                {"id": 0, "filename": IMAGE_NAME, "description": self.image_alt[:1024]}
            ]
        return body


def render_reply(
    reply: Reply, now: datetime, *, mention: Mention | None = None, marker: str | None = None
) -> DiscordMessage:
    """Render a neutral reply as a Discord message within every platform limit.

    ``mention``: the role the message pings (other kinds have no Discord form and are left
    out). ``marker``: text the footer must end with (the outbox's delivery reference); it is
    part of the embed before anything is fitted, so the total stays within Discord's 6,000.
    """
    title = truncate(reply.title, TITLE_LIMIT) if reply.title else None
    footer = _footer(to_plain(reply.footer, now) if reply.footer else "", marker)
    fitted = fit_reply(reply, measure, reserved=len(title or "") + len(footer))
    embed = discord.Embed(
        title=title,
        description=render_text(fitted.reply.body) or None,
        colour=TONE_COLOUR[reply.tone],
        url=reply.url.address if title and reply.url else None,
    )
    for item in fitted.reply.fields:
        embed.add_field(
            name=render_text((Quoted(item.name),)) or ZWSP,
            value=render_text(item.value) or ZWSP,
            inline=item.inline,
        )
    if footer:
        embed.set_footer(text=footer)
    if reply.image_png is not None:
        embed.set_image(url=f"attachment://{IMAGE_NAME}")
    role = mention.id if mention is not None and mention.kind is MentionKind.ROLE else None
    role = role if role and role.isdigit() else None
    return DiscordMessage(
        embed=embed,
        buttons=render_buttons(reply),
        content=f"<@&{role}>" if role else None,
        image_png=reply.image_png,
        image_alt=reply.image_alt[:1024],
        ephemeral=reply.ephemeral,
        mention_role=role,
        truncated=fitted.truncated,
    )


def _footer(text: str, marker: str | None) -> str:
    """The footer within its limit; the marker, when given, always ends it whole."""
    if not marker:
        return truncate(text, FOOTER_LIMIT)
    separator = " · "
    room = FOOTER_LIMIT - len(marker) - len(separator)
    return f"{truncate(text, room)}{separator}{marker}" if text else marker


def render_buttons(reply: Reply) -> tuple[RenderedButton, ...]:
    """Link buttons and ``ob:`` action buttons; ones Discord would refuse are left out.

    Discord refuses a whole message whose custom_ids repeat (50035), so a repeat is dropped."""
    out: list[RenderedButton] = []
    seen: set[str] = set()
    for button in reply.buttons:
        label = truncate(button.label, BUTTON_LABEL_LIMIT) or "Open"
        if button.url:
            out.append(RenderedButton(label=label, url=button.url.address))
        elif button.action:
            custom_id = ACTION_PREFIX + button.action
            if len(custom_id) <= CUSTOM_ID_LIMIT and custom_id not in seen:
                seen.add(custom_id)
                out.append(RenderedButton(label=label, custom_id=custom_id))
    return tuple(out[:MAX_BUTTONS])


def form_custom_id(form: Form) -> str | None:
    """The modal's custom_id, or None when the command line does not fit Discord's 100."""
    custom_id = FORM_PREFIX + " ".join(form.command.split())
    return custom_id if len(custom_id) <= CUSTOM_ID_LIMIT and form.fields else None


def render_form(form: Form) -> discord.ui.Modal | None:
    """A stateless modal (call inside the event loop); its submit routes by custom_id prefix."""
    custom_id = form_custom_id(form)
    if custom_id is None:
        return None
    modal = discord.ui.Modal(
        title=truncate(form.title, MODAL_TITLE_LIMIT) or "Form", custom_id=custom_id
    )
    for field in form.fields[:5]:  # Discord shows at most five inputs
        modal.add_item(
            discord.ui.TextInput(
                label=truncate(field.label, INPUT_LABEL_LIMIT) or field.name,
                custom_id=field.name,
                style=discord.TextStyle.paragraph if field.long else discord.TextStyle.short,
                required=field.required,
                max_length=max(1, min(field.max_length, INPUT_VALUE_LIMIT)),
            )
        )
    # Like button views: no per-user state in discord.py; on_interaction handles the submit.
    modal.stop()
    return modal


def submitted_values(data: Any) -> dict[str, str]:
    """A MODAL_SUBMIT's text values by custom_id, whether in action rows or labels."""
    values: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if isinstance(node.get("custom_id"), str) and isinstance(node.get("value"), str):
                values[node["custom_id"]] = node["value"]
            walk(node.get("components"))
            walk(node.get("component"))

    walk(data.get("components") if isinstance(data, dict) else None)
    return values
