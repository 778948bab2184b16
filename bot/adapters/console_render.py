"""Render a neutral Reply as terminal text."""

from __future__ import annotations

import textwrap
from datetime import datetime

from bot.core.commands import Reply
from bot.core.layout import fit_reply
from bot.core.rich import to_plain


def render_reply(reply: Reply, now: datetime, width: int = 100) -> str:
    """Readable plain text for a reply: title rule, body, indented fields, buttons, footer.

    The body and fields are fitted by `bot.core.layout` as on every platform, so the terminal
    shows what a Discord or Slack reader sees.
    """
    title = f"━━ {reply.title} ━━" if reply.title else ""
    reserved = len(reply.title or "") + len(to_plain(reply.footer, now))
    reply = fit_reply(reply, lambda text: len(to_plain(text, now)), reserved=reserved).reply
    out: list[str] = []
    if title:
        out.append(title)
    if reply.body:
        out.append(to_plain(reply.body, now))
    for field in reply.fields:
        out.append(f"{field.name}:")
        value = to_plain(field.value, now)
        out.extend(
            textwrap.fill(line, width, initial_indent="  ", subsequent_indent="  ") or "  "
            for line in value.splitlines()
        )
    links = [f"[{b.label}] {b.url.address}" for b in reply.buttons if b.url]
    actions = [f"[{b.label}]" for b in reply.buttons if not b.url]
    out.extend(links)
    if actions:
        out.append(" ".join(actions))
    if reply.image_png:
        out.append(f"(chart: {reply.image_alt or 'image'} — open the web dashboard to see it)")
    if reply.footer:
        out.append(to_plain(reply.footer, now))
    return "\n".join(out)
