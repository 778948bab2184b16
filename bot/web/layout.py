"""The HTML shell every dashboard page shares, and its small reusable pieces."""

from __future__ import annotations

from bot.core.service_state import ServiceState
from bot.web.html import Markup, escape, render

REFRESH_SECONDS = 60
SECURITY_HEADERS = {
    # Everything is served from here: no CDN, no inline script, no framing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATE_MARK = {
    # A shape per state as well as a colour, so the state never depends on seeing colour.
    ServiceState.OPERATIONAL: "✓",
    ServiceState.MAINTENANCE: "◆",
    ServiceState.DEGRADED: "▲",
    ServiceState.PARTIAL_OUTAGE: "▲",
    ServiceState.MAJOR_OUTAGE: "✕",
    ServiceState.UNKNOWN: "?",
}
SHORT_LABEL = {
    ServiceState.UNKNOWN: "Unknown",
}

_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/refresh.js" defer></script>
{noscript}
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="site">
<nav aria-label="Site"><a class="brand" href="/">outagebot status</a>
<a href="/api/v1/openapi.json">JSON API</a></nav>
</header>
<main id="main" tabindex="-1" data-refresh="{refresh}" data-refresh-seconds="{seconds}">
{main}
</main>
<footer class="site">
<p>Times are UTC. States come from official status pages; early warnings come from user reports
and our own API checks and are marked as unconfirmed. Refreshes every minute.</p>
</footer>
</body>
</html>
"""


def page(title: str, main: Markup, *, refresh: str | None) -> str:
    """A whole page; ``refresh`` is the URL of this page's ``<main>`` content, when it updates."""
    noscript = (
        render('<noscript><meta http-equiv="refresh" content="{s}"></noscript>', s=REFRESH_SECONDS)
        if refresh
        else ""
    )
    return render(
        _SHELL,
        title=title,
        main=main,
        refresh=refresh or "",
        seconds=REFRESH_SECONDS,
        noscript=noscript,
    )


def error_page(status: int, message: str) -> str:
    """A friendly error page."""
    heading = {404: "Not found", 429: "Slow down", 400: "Bad request"}.get(status, "Sorry")
    main = render(
        '<h1>{heading}</h1><p>{message}</p><p><a href="/">See every service</a></p>',
        heading=heading,
        message=message,
    )
    return page(f"{heading} · outagebot", main, refresh=None)


def state_pill(state: ServiceState) -> Markup:
    """The state as a coloured pill with a shape and words."""
    return render(
        '<span class="pill s-{state}"><span class="mark" aria-hidden="true">{mark}</span> '
        "{label}</span>",
        state=state.value,
        mark=STATE_MARK[state],
        label=SHORT_LABEL.get(state, state.label),
    )


def section(heading: str, anchor: str, body: Markup) -> Markup:
    """A labelled section of a page."""
    return render(
        '<section aria-labelledby="{anchor}"><h2 id="{anchor}">{heading}</h2>{body}</section>',
        anchor=anchor,
        heading=heading,
        body=body,
    )


def paragraph(text: object, cls: str = "") -> Markup:
    """One escaped paragraph."""
    if cls:
        return render('<p class="{cls}">{text}</p>', cls=cls, text=text)
    return render("<p>{text}</p>", text=escape(text))
