"""Reply → Slack Block Kit, within Slack's limits, with untrusted text made harmless.

Slack parses ``<…>`` in mrkdwn as links, mentions (``<@U…>``, ``<!channel>``) and dates, and
``&``, ``<``, ``>`` are its only escapes. Every span is escaped; `Quoted` text additionally gets a
zero-width space that breaks mrkdwn emphasis and bare ``@here``-style words, so a user or a status
page can neither ping anyone nor dress text up as ours. Text objects are ``verbatim`` so Slack does
not auto-link or auto-mention anything either.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.core.commands import Button, Form, Reply, ReplyField
from bot.core.layout import fit_reply
from bot.core.links import WebLink
from bot.core.mention import Mention, MentionKind
from bot.core.rich import Link, Plain, Quoted, RichText, Strong, When, to_plain

log = logging.getLogger(__name__)

ACTION_PREFIX = "ob:"
FORM_PREFIX = "obf:"
"""callback_id prefix of our modals; the rest is the form's command line."""
FORM_VALUE_ACTION = "value"
MAX_MODAL_TITLE = 24
MAX_CALLBACK_ID = 255
MAX_INPUT_LABEL = 2000
MAX_INPUT_VALUE = 3000
MAX_PRIVATE_METADATA = 3000
MAX_BLOCKS = 50
MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_FIELDS_PER_SECTION = 10
MAX_CONTEXT = 2000
MAX_BUTTONS_PER_ACTIONS = 25
MAX_BUTTON_LABEL = 75
MAX_ACTION_ID = 255
MAX_URL = 3000
MAX_FALLBACK = 3000
MAX_ALT = 2000
ELLIPSIS = "…"

Block = dict[str, Any]
_ZWSP = "\u200b"
_FORMATTING = re.compile(r"([*_~`])")
_BROADCAST_WORD = re.compile(r"@(?=(?:channel|here|everyone)\b)", re.IGNORECASE)
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,30}$")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What chat.postMessage / respond take: Block Kit blocks and a plain-text fallback."""

    text: str
    blocks: list[Block] = field(default_factory=list)


def escape(text: str) -> str:
    """Slack's three control characters, escaped as Slack asks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_untrusted(text: str) -> str:
    """Escape text we did not write: no links, mentions, dates or emphasis can survive."""
    text = _BROADCAST_WORD.sub("@" + _ZWSP, escape(text))
    return _FORMATTING.sub(_ZWSP + r"\1" + _ZWSP, text)


def format_mention(mention: Mention | None) -> str | None:
    """Mrkdwn for a subscription's mention: a user group, ``@here`` or ``@channel``.

    A mention with no Slack form (a Discord role) is left out, with a log line: /subscribe
    refuses those, so one here means a stored value from elsewhere.
    """
    if mention is None:
        return None
    if mention.kind is MentionKind.SUBTEAM and _GROUP_ID.match(mention.id or ""):
        return f"<!subteam^{mention.id}>"
    if mention.kind in (MentionKind.HERE, MentionKind.CHANNEL):
        return f"<!{mention.kind.value}>"
    log.warning("ignoring a mention Slack cannot make: %s", mention.kind.value)
    return None


def to_mrkdwn(text: RichText, now: datetime) -> str:
    """Render rich text as Slack mrkdwn."""
    out: list[str] = []
    for span in text:
        match span:
            case Plain(t):
                out.append(escape(t))
            case Strong(t):
                inner = escape(t.replace("*", "")).strip()
                out.append(f"*{inner}*" if inner else "")
            case Quoted(t):
                out.append(escape_untrusted(t))
            case When(at):
                fallback = escape(to_plain((span,), now)).replace("|", "/")
                stamp = int(at.timestamp())
                out.append(f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{fallback}>")
            case Link(label, url):
                target = WebLink.parse(url)
                shown = escape_untrusted(label).replace("|", "¦") if label else ""
                if target is None:
                    out.append(shown or escape_untrusted(url))
                else:
                    address = target.address
                    out.append(f"<{address}|{shown}>" if shown else f"<{address}>")
    return "".join(out)


def _head(text: str, limit: int) -> str:
    """The longest start of mrkdwn within ``limit`` that ends outside ``<…>`` and ``&…;``."""
    head = text[: max(0, limit)]
    opening = head.rfind("<")
    if opening > head.rfind(">"):
        head = head[:opening]
    amp = head.rfind("&")
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head


def cut(text: str, limit: int) -> str:
    """Cut mrkdwn to ``limit`` characters with an ellipsis, never inside ``<…>`` or ``&…;``."""
    if len(text) <= limit:
        return text
    return _head(text, limit - len(ELLIPSIS)).rstrip() + ELLIPSIS


def split_sections(text: str, limit: int = MAX_SECTION) -> list[str]:
    """Split mrkdwn into pieces of at most ``limit``, preferring line breaks, then spaces."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            pieces.append(current)
        *whole, current = _split_line(line, limit)
        pieces.extend(whole)
    if current.strip():
        pieces.append(current)
    return pieces


def _split_line(line: str, limit: int) -> list[str]:
    """One line as pieces of at most ``limit``, split at a space where that loses little.

    The layout already fitted the text to what every platform shows; a section's limit is
    Slack's own, so a long line goes on in the next section instead of being cut.
    """
    pieces: list[str] = []
    while len(line) > limit:
        head = _head(line, limit)
        space = head.rfind(" ")
        if space > len(head) * 0.8:
            head = head[: space + 1]
        if not head.strip():  # one token longer than a section: nothing to split at
            return [*pieces, cut(line, limit)]
        pieces.append(head.rstrip())
        line = line[len(head) :].lstrip()
    return [*pieces, line]


def _plain_text(text: str, limit: int) -> Block:
    return {"type": "plain_text", "text": _cut_plain(text, limit), "emoji": True}


def _cut_plain(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)].rstrip() + ELLIPSIS


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> Block:
    return {"type": "section", "text": _mrkdwn(text)}


def _field_text(item: ReplyField, now: datetime) -> str:
    name = escape(item.name.replace("*", "")).strip()
    return cut(
        f"*{name}*\n{to_mrkdwn(item.value, now)}" if name else to_mrkdwn(item.value, now), MAX_FIELD
    )


def _field_blocks(fields: tuple[ReplyField, ...], now: datetime) -> list[Block]:
    blocks: list[Block] = []
    group: list[Block] = []
    for item in fields:
        text = _field_text(item, now)
        if item.inline:
            group.append(_mrkdwn(text))
            if len(group) == MAX_FIELDS_PER_SECTION:
                blocks.append({"type": "section", "fields": group})
                group = []
            continue
        if group:
            blocks.append({"type": "section", "fields": group})
            group = []
        blocks.append(_section(text))
    if group:
        blocks.append({"type": "section", "fields": group})
    return blocks


def action_id_for(button: Button) -> str | None:
    """The action id of a command button (``ob:`` + its command line), or None if unusable."""
    action_id = ACTION_PREFIX + " ".join(button.action.split())
    return action_id if button.action.strip() and len(action_id) <= MAX_ACTION_ID else None


def _button_elements(buttons: tuple[Button, ...], reply_url: WebLink | None) -> list[Block]:
    elements: list[Block] = []
    seen: set[str] = set()
    candidates = list(buttons)
    if reply_url and not any(b.url == reply_url for b in buttons):
        candidates.append(Button(label="Open", url=reply_url))
    for index, button in enumerate(candidates):
        element: Block = {"type": "button", "text": _plain_text(button.label, MAX_BUTTON_LABEL)}
        if button.url:
            # Link buttons still send an action; a distinct id keeps ids unique in the block.
            element.update(url=button.url.address, action_id=f"oblink:{index}")
        else:
            action_id = action_id_for(button)
            if action_id is None or action_id in seen:
                continue
            seen.add(action_id)
            element["action_id"] = action_id
        elements.append(element)
    return elements


def render_reply(
    reply: Reply, now: datetime, *, mention: Mention | None = None, image_url: str | None = None
) -> SlackMessage:
    """Block Kit for a reply: header, sections, fields, image, context, actions, ≤ 50 blocks.

    ``mention``: who the message pings (`format_mention`), put before the body.
    ``image_url`` (the reply's chart, served by the bot) becomes an image block after the fields.
    The body and fields are fitted by `bot.core.layout`, as on every platform, and the
    fallback text is made from what was kept.
    """
    head: list[Block] = []
    if reply.title and reply.title.strip():
        head.append({"type": "header", "text": _plain_text(reply.title, MAX_HEADER)})
    footer = to_mrkdwn(reply.footer, now)
    footer = cut(footer, MAX_CONTEXT) if footer.strip() else ""
    shown = sum(len(block["text"]["text"]) for block in head) + len(footer)
    reply = fit_reply(reply, lambda text: len(to_mrkdwn(text, now)), reserved=shown).reply
    ping = format_mention(mention)
    body = to_mrkdwn(reply.body, now)
    if ping:
        body = f"{ping} {body}" if body else ping
    body_blocks = [_section(piece) for piece in split_sections(body)]
    field_blocks = _field_blocks(reply.fields, now)
    tail: list[Block] = []
    if image_url:
        alt = reply.image_alt.strip() or reply.title or "chart"
        tail.append({"type": "image", "image_url": image_url, "alt_text": cut(alt, MAX_ALT)})
    if footer:
        tail.append({"type": "context", "elements": [_mrkdwn(footer)]})
    elements = _button_elements(reply.buttons, reply.url)
    for start in range(0, len(elements), MAX_BUTTONS_PER_ACTIONS):
        tail.append(
            {"type": "actions", "elements": elements[start : start + MAX_BUTTONS_PER_ACTIONS]}
        )
    tail = tail[: MAX_BLOCKS - len(head) - 1]
    room = MAX_BLOCKS - len(head) - len(tail)
    middle = body_blocks + field_blocks
    if len(middle) > room:
        middle = [*middle[: room - 1], _section(f"{ELLIPSIS} (shortened)")]
    text = _fallback_text(reply, now, ping)
    blocks = head + middle + tail
    if not head and not middle:  # Slack rejects empty sections; say at least something
        blocks.insert(0, _section(text))
    return SlackMessage(text=text, blocks=blocks)


def _fallback_text(reply: Reply, now: datetime, ping: str | None) -> str:
    """The notification / screen-reader text: the ping, title and body, escaped, capped."""
    parts = [escape(reply.title.strip())] if reply.title and reply.title.strip() else []
    body = to_mrkdwn(reply.body, now)
    if body.strip():
        parts.append(body)
    text = "\n".join(parts) or "outagebot"
    if ping:
        text = f"{ping} {text}"
    return cut(text, MAX_FALLBACK)


def render_form(
    form: Form, *, channel_id: str | None, response_url: str | None = None
) -> Block | None:
    """A modal view for views.open; None when the command line is too long for a callback_id.

    Each field is an input block whose block_id is the field's name and whose element's
    action_id is ``value``; ``private_metadata`` keeps where to answer (`form_return`).
    """
    callback_id = FORM_PREFIX + " ".join(form.command.split())
    if len(callback_id) > MAX_CALLBACK_ID or not form.fields:
        return None
    blocks: list[Block] = []
    for item in form.fields[:MAX_BLOCKS]:
        element: Block = {
            "type": "plain_text_input",
            "action_id": FORM_VALUE_ACTION,
            "multiline": item.long,
            "max_length": max(1, min(item.max_length, MAX_INPUT_VALUE)),
        }
        blocks.append(
            {
                "type": "input",
                "block_id": item.name,
                "optional": not item.required,
                "label": _plain_text(item.label or item.name, MAX_INPUT_LABEL),
                "element": element,
            }
        )
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain_text(form.title or "Form", MAX_MODAL_TITLE),
        "submit": _plain_text("Submit", MAX_MODAL_TITLE),
        "close": _plain_text("Cancel", MAX_MODAL_TITLE),
        "private_metadata": _form_metadata(channel_id, response_url),
        "blocks": blocks,
    }


def _form_metadata(channel_id: str | None, response_url: str | None) -> str:
    # The response_url reaches the user even where the bot is not a channel member (where
    # chat.postEphemeral fails); without one (or if it would not fit) the channel is enough.
    if response_url and _is_web_url(response_url):
        packed = json.dumps({"c": channel_id or "", "r": response_url}, separators=(",", ":"))
        if len(packed) <= MAX_PRIVATE_METADATA:
            return packed
    return (channel_id or "")[:MAX_PRIVATE_METADATA]


def form_return(view: Any) -> tuple[str | None, str | None]:
    """(channel id, response_url) kept in a submitted modal's ``private_metadata``.

    Modals opened before this format existed carry the bare channel id; both are read.
    """
    raw = view.get("private_metadata") if isinstance(view, dict) else None
    if not isinstance(raw, str) or not raw:
        return None, None
    if not raw.startswith("{"):
        return raw[:100], None
    try:
        data = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    channel, url = data.get("c"), data.get("r")
    channel = channel[:100] if isinstance(channel, str) and channel else None
    url = url if isinstance(url, str) and _is_web_url(url) else None
    return channel, url


def _is_web_url(url: str) -> bool:
    # Only ever what Slack itself sent us (a signed payload's response_url), kept in our modal.
    return url.startswith(("https://", "http://")) and len(url) <= MAX_URL


def submitted_values(view: Any) -> dict[str, str]:
    """A view_submission's text values by block_id (the field names)."""
    state = view.get("state") if isinstance(view, dict) else None
    values = state.get("values") if isinstance(state, dict) else None
    out: dict[str, str] = {}
    if not isinstance(values, dict):
        return out
    for block_id, actions in values.items():
        action = actions.get(FORM_VALUE_ACTION) if isinstance(actions, dict) else None
        value = action.get("value") if isinstance(action, dict) else None
        if isinstance(block_id, str) and isinstance(value, str):
            out[block_id] = value
    return out
