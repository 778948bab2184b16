"""Neutral rich text: what a reply says, with untrusted text and times marked for each renderer.

Adapters render spans their own way (Discord markdown and ``<t:…:R>``, Slack mrkdwn and
``<!date^…>``, plain text in the console). Marking untrusted text as `Quoted` is what keeps a
status page or a user from injecting mentions or formatting: every renderer escapes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from bot.core.timeutil import format_duration


@dataclass(frozen=True, slots=True)
class Plain:
    """Our own words; rendered as is."""

    text: str


@dataclass(frozen=True, slots=True)
class Strong:
    """Our own words, emphasised."""

    text: str


@dataclass(frozen=True, slots=True)
class Quoted:
    """Text we did not write (users, status pages): always escaped, never a mention."""

    text: str


@dataclass(frozen=True, slots=True)
class When:
    """A moment, shown in the reader's own time zone where the platform can."""

    at: datetime
    style: Literal["relative", "datetime"] = "relative"


@dataclass(frozen=True, slots=True)
class Link:
    """A hyperlink with a label (the label is treated as untrusted)."""

    label: str
    url: str


Span = Plain | Strong | Quoted | When | Link
RichText = tuple[Span, ...]


def rich(*parts: Span | str) -> RichText:
    """Build rich text; bare strings are our own plain words."""
    return tuple(Plain(p) if isinstance(p, str) else p for p in parts)


def join_lines(lines: list[RichText]) -> RichText:
    """Join several rich lines with newlines."""
    out: list[Span] = []
    for index, line in enumerate(lines):
        if index:
            out.append(Plain("\n"))
        out.extend(line)
    return tuple(out)


def to_plain(text: RichText, now: datetime) -> str:
    """Render as plain text (console, logs, notification fallbacks)."""
    out = []
    for span in text:
        match span:
            case Plain(t) | Strong(t) | Quoted(t):
                out.append(t)
            case When(at, style):
                stamp = at.strftime("%Y-%m-%d %H:%M UTC")
                if style == "relative":
                    delta = now - at
                    ago = format_duration(abs(delta))
                    stamp = (
                        f"{ago} ago ({stamp})"
                        if delta.total_seconds() >= 0
                        else f"in {ago} ({stamp})"
                    )
                out.append(stamp)
            case Link(label, url):
                out.append(f"{label} <{url}>" if label and label != url else url)
    return "".join(out)
