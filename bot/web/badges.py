"""Status badges (``/badge/<id>.svg``), shaped like shields.io's flat badges, drawn here."""

from __future__ import annotations

from aiohttp import web

from bot.core.service_state import ServiceState
from bot.services import facts
from bot.web.endpoint import WEB, conditional, endpoint
from bot.web.html import render

CACHE = "public, max-age=60"
BADGE_COLOURS = {
    # Dark enough for white text at 4.5:1 (WCAG AA).
    ServiceState.OPERATIONAL: "#1a7f37",
    ServiceState.MAINTENANCE: "#0b5cad",
    ServiceState.DEGRADED: "#8a5a00",
    ServiceState.PARTIAL_OUTAGE: "#b35900",
    ServiceState.MAJOR_OUTAGE: "#c0262d",
    ServiceState.UNKNOWN: "#5c6370",
}
BADGE_TEXT = {
    ServiceState.OPERATIONAL: "operational",
    ServiceState.MAINTENANCE: "maintenance",
    ServiceState.DEGRADED: "degraded",
    ServiceState.PARTIAL_OUTAGE: "partial outage",
    ServiceState.MAJOR_OUTAGE: "major outage",
    ServiceState.UNKNOWN: "unknown",
}
_NARROW = set("fijlrt.,:;'|!() ")
_WIDE = set("mwMW@%")
_SVG = """<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" \
aria-label="{label}: {message}"><title>{label}: {message}</title>\
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>\
<stop offset="1" stop-opacity=".1"/></linearGradient>\
<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>\
<g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/>\
<rect x="{left}" width="{right}" height="20" fill="{colour}"/>\
<rect width="{width}" height="20" fill="url(#s)"/></g>\
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" \
font-size="11"><text x="{label_x}" y="14">{label}</text>\
<text x="{message_x}" y="14">{message}</text></g></svg>"""


def install(app: web.Application) -> None:
    """Add the badge route to ``app``."""
    app.router.add_get("/badge/{service_id}.svg", badge)


def text_width(text: str) -> int:
    """Roughly how wide ``text`` is in 11 px Verdana; no font metrics needed for a badge."""
    return sum(4 if c in _NARROW else 10 if c in _WIDE else 7 for c in text)


def badge_svg(label: str, message: str, colour: str) -> str:
    """A flat two-part badge; both texts are escaped."""
    label = label[:40]
    left = text_width(label) + 12
    right = text_width(message) + 12
    return render(
        _SVG,
        width=left + right,
        left=left,
        right=right,
        colour=colour,
        label=label,
        message=message,
        label_x=left / 2,
        message_x=left + right / 2,
    )


@endpoint("svg")
async def badge(request: web.Request) -> web.StreamResponse:
    """The current state of one service as a badge; an unknown id gets a 404 badge."""
    context = request.app[WEB]
    service = context.deps.catalog.get(request.match_info["service_id"].lower())
    if service is None:
        body = badge_svg("outagebot", "no such service", BADGE_COLOURS[ServiceState.UNKNOWN])
        return web.Response(
            status=404,
            text=body,
            content_type="image/svg+xml",
            headers={"Cache-Control": "no-store"},
        )
    summary = await facts.summary(context.deps, service, context.clock())
    svg = badge_svg(service.name, BADGE_TEXT[summary.state], BADGE_COLOURS[summary.state])
    return conditional(
        request,
        svg.encode(),
        content_type="image/svg+xml",
        cache_control=CACHE,
        extra_headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )
