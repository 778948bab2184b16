"""A tiny HTML template helper that escapes every value unless it is already markup.

Status pages and users write some of the text we show, so escaping is the default and opting out
is explicit (`Markup`): a forgotten call can only over-escape, never inject.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bot.core.timeutil import format_timestamp


class Markup(str):
    """Text that is already safe HTML (built by `render` or `escape`)."""

    __slots__ = ()


def escape(value: object) -> Markup:
    """``value`` as HTML text; markup passes through unchanged."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def render(template: str, /, **values: object) -> Markup:
    """Fill the ``{name}`` slots of a trusted template, escaping each value that is not markup."""
    return Markup(template.format_map({name: escape(value) for name, value in values.items()}))


def join(parts: Iterable[Markup], separator: str = "") -> Markup:
    """Concatenate markup (the separator is trusted text)."""
    return Markup(separator.join(escape(part) for part in parts))


def safe_href(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) link, else None.

    A status page or a user could hand us ``javascript:`` URLs; those must never become links.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return url.strip()


def link(text: object, url: str | None, *, external: bool = True) -> Markup:
    """An ``<a>`` when the URL is a safe http(s) link, else just the text."""
    href = safe_href(url) if external else url
    if href is None:
        return escape(text)
    rel = ' rel="noopener noreferrer nofollow"' if external else ""
    return render('<a href="{href}"' + rel + ">{text}</a>", href=href, text=text)


def timestamp(value: datetime | None, *, style: str = "datetime") -> Markup:
    """A ``<time>`` element in UTC, readable without JavaScript."""
    if value is None:
        return Markup("")
    value = value.astimezone(UTC)
    shown = f"{value:%Y-%m-%d %H:%M} UTC" if style == "datetime" else f"{value:%d %b %Y}"
    return render('<time datetime="{iso}">{shown}</time>', iso=format_timestamp(value), shown=shown)
