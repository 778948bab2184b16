"""The dashboard: every service at a glance (``/``) and one service in detail (``/service/<id>``).

Server-rendered; the only script swaps in a fresh ``<main>`` once a minute (see docs/web.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources

from aiohttp import web

from bot.charts.model import Chart
from bot.core.links import plain_link_host
from bot.core.service_state import ServiceState
from bot.core.timeutil import format_duration
from bot.core.wording import impact_word, plural
from bot.services import facts
from bot.web.endpoint import WEB, ApiError, conditional, endpoint
from bot.web.html import Markup, join, link, render, safe_href, timestamp
from bot.web.layout import SECURITY_HEADERS, page, paragraph, section, state_pill

CACHE = "no-cache"
STATIC = {"dashboard.css": "text/css", "refresh.js": "text/javascript"}


def install(app: web.Application) -> None:
    """Add the dashboard routes to ``app``."""
    app.router.add_get("/", overview)
    app.router.add_get("/service/{service_id}", service_page)
    app.router.add_get("/service/{service_id}/chart.png", chart_png)
    app.router.add_get("/static/{name}", static)


def _html(request: web.Request, title: str, main: Markup, refresh: str) -> web.Response:
    # ?partial=main answers only the <main> content, for the refresh script.
    if request.query.get("partial") == "main":
        body = main
    else:
        body = Markup(page(title, main, refresh=refresh))
    return conditional(
        request,
        body.encode(),
        content_type="text/html",
        cache_control=CACHE,
        extra_headers=SECURITY_HEADERS,
    )


@endpoint("html")
async def overview(request: web.Request) -> web.StreamResponse:
    """Every tracked service as a card, trouble first."""
    context = request.app[WEB]
    now = context.clock()
    found = await facts.summaries(context.deps, now)
    found.sort(key=lambda s: (-s.state.rank, s.service.name.casefold()))
    main = render(
        '<h1>Service status</h1>{summary}<p class="updated">Updated {now}</p>'
        '<ul class="cards" aria-label="Services">{cards}</ul>',
        summary=paragraph(overview_sentence(found), "summary"),
        now=timestamp(now),
        cards=join(_card(s, now) for s in found),
    )
    return _html(request, "Service status · outagebot", main, "/?partial=main")


def overview_sentence(found: list[facts.ServiceSummary]) -> str:
    """One sentence on how things stand overall: the headline /status opens with too."""
    warnings = sum(1 for s in found if s.early_warning is not None)
    return facts.headline((s.state for s in found), warnings=warnings).sentence


def _card(summary: facts.ServiceSummary, now: datetime) -> Markup:
    service = summary.service
    lines = [
        render(
            '<p class="state">{pill}{since}</p>',
            pill=state_pill(summary.state),
            since=_since(summary, now),
        ),
        _markers(summary),
    ]
    if summary.incident is not None:
        more = summary.open_incidents - 1
        lines.append(
            render(
                '<p class="incident">Incident: {title} · {impact} impact{more}</p>',
                title=link(summary.incident.title, summary.incident.url),
                impact=impact_word(summary.incident.impact),
                more=f" (+{more} more)" if more > 0 else "",
            )
        )
    lines.append(paragraph(_reports_line(summary), "reports"))
    return render(
        '<li class="card s-{state}"><article aria-labelledby="c-{id}">'
        '<h2 id="c-{id}"><a href="/service/{id}">{name}</a></h2>{lines}</article></li>',
        state=summary.state.value,
        id=service.id,
        name=service.name,
        lines=join(lines),
    )


def _since(summary: facts.ServiceSummary, now: datetime) -> Markup:
    if summary.since is None or summary.state is ServiceState.OPERATIONAL:
        return Markup("")
    return render(
        ' <span class="since">since {when} ({lasted})</span>',
        when=timestamp(summary.since),
        lasted=_ago(now - summary.since),
    )


def _ago(elapsed: timedelta) -> str:
    return "just now" if elapsed < timedelta(minutes=1) else f"for {format_duration(elapsed)}"


def _markers(summary: facts.ServiceSummary) -> Markup:
    marks = []
    if summary.state is not ServiceState.UNKNOWN and summary.service.official_sources:
        marks.append(Markup('<span class="tag official">Official status page</span>'))
    if summary.early_warning is not None:
        marks.append(
            render(
                '<span class="tag early">Early warning: users report problems since {when} '
                "(unconfirmed)</span>",
                when=timestamp(summary.early_warning.first_report_at),
            )
        )
    if summary.probe_failing:
        marks.append(
            Markup('<span class="tag early">Our own API check is failing (unofficial)</span>')
        )
    if not marks:
        return Markup("")
    return render('<p class="tags">{marks}</p>', marks=join(marks, " "))


def _reports_line(summary: facts.ServiceSummary) -> str:
    text = f"User reports in the last hour: {summary.reports_last_hour}"
    if summary.usual_per_hour is None:
        return text + " (usual: not enough data yet)"
    return text + f" (usually {summary.usual_per_hour:.1f} an hour)"


@endpoint("html")
async def service_page(request: web.Request) -> web.StreamResponse:
    """One service: components, incident timeline, reports, workarounds, history, alternatives."""
    context = request.app[WEB]
    service = context.deps.catalog.get(request.match_info["service_id"].lower())
    if service is None:
        raise ApiError(404, "not_found", "I don't track a service with that id.")
    now = context.clock()
    detail = await facts.detail(context.deps, service, now)
    chart = (await context.deps.report_activity(service.id, now=now)).chart
    head = detail.summary
    header = render(
        '<h1>{name}</h1><p class="state">{pill}{since}</p>{markers}<p class="links">{page}'
        '<a href="/api/v1/services/{id}">JSON</a> · <a href="/badge/{id}.svg">Badge</a></p>'
        '<p class="updated">Updated {now}</p>',
        name=service.name,
        pill=state_pill(head.state),
        since=_since(head, now),
        markers=_markers(head),
        page=render("{a} · ", a=link("Official status page", service.status_page))
        if service.status_page
        else "",
        id=service.id,
        now=timestamp(now),
    )
    parts = [
        header,
        section("Open incidents", "incidents", _incidents(detail)),
        section("Components", "components", _components(detail)),
        section("User reports, last 24 hours", "reports", _reports(detail, chart)),
        section("Workarounds", "workarounds", _workarounds(detail)),
        section(f"Last {detail.history.days} days", "history", _history(detail, now)),
        section("Alternatives working now", "alternatives", _alternatives(detail)),
    ]
    refresh = f"/service/{service.id}?partial=main"
    return _html(request, f"{service.name} status · outagebot", join(parts), refresh)


def _incidents(detail: facts.ServiceDetail) -> Markup:
    if not detail.incidents:
        if detail.summary.state is ServiceState.UNKNOWN:
            return paragraph("The official status page could not be read just now.")
        return paragraph("No open incidents on the official status page.")
    blocks = []
    for incident in detail.incidents:
        updates = join(
            render(
                '<li><p class="meta">{when} · <strong>{status}</strong></p>'
                '<p class="body">{body}</p></li>',
                when=timestamp(u.created_at),
                status=u.status.capitalize(),
                body=u.body.strip() or "(no text)",
            )
            for u in incident.updates
        )
        blocks.append(
            render(
                '<article class="incident"><h3>{title}</h3><p class="meta">{impact} impact · '
                "{status}{started}</p>{timeline}</article>",
                title=link(incident.title, incident.url),
                impact=impact_word(incident.impact),
                status=incident.status,
                started=render(" · started {t}", t=timestamp(incident.started_at))
                if incident.started_at
                else "",
                timeline=render(
                    '<ol class="timeline" aria-label="Official updates, newest first">{u}</ol>',
                    u=updates,
                )
                if incident.updates
                else paragraph("No updates posted yet."),
            )
        )
    return join(blocks)


def _components(detail: facts.ServiceDetail) -> Markup:
    if not detail.components:
        if detail.summary.state is ServiceState.UNKNOWN:
            return paragraph("Not known until the official status page can be read.")
        return paragraph("This status page lists no components.")
    rows = join(
        render(
            "<tr><th scope=row>{name}{group}</th><td>{pill}</td></tr>",
            name=c.name,
            group=render(' <span class="group">({g})</span>', g=c.group) if c.group else "",
            pill=state_pill(c.state),
        )
        for c in detail.components
    )
    return render(
        '<table class="components"><thead><tr><th scope="col">Component</th>'
        '<th scope="col">State</th></tr></thead><tbody>{rows}</tbody></table>',
        rows=rows,
    )


def _reports(detail: facts.ServiceDetail, chart: Chart | None) -> Markup:
    total = sum(count for _, count in detail.reports)
    busiest = max(detail.reports, key=lambda pair: pair[1], default=None)
    text = f"{plural(total, 'counted report')} in the last 24 hours"
    if busiest is not None and busiest[1] > 0:
        text += f"; the busiest hour began {busiest[0]:%H:%M} UTC with {busiest[1]}"
    figure = Markup("")
    if chart is not None:
        figure = render(
            '<img class="chart" src="/service/{id}/chart.png" alt="{alt}">',
            id=detail.summary.service.id,
            alt=chart.alt,
        )
    rows = join(
        render("<tr><th scope=row>{hour}</th><td>{count}</td></tr>", hour=f"{at:%H:%M}", count=n)
        for at, n in detail.reports
    )
    return render(
        '{figure}<p>{text}.</p><details><summary>Reports per hour</summary><table class="hours">'
        '<thead><tr><th scope="col">Hour (UTC)</th><th scope="col">Reports</th></tr></thead>'
        "<tbody>{rows}</tbody></table></details>",
        figure=figure,
        text=text,
        rows=rows,
    )


def _workaround_link(url: str | None) -> Markup | str:
    # Labelled with the host it really opens; one hiding it (user@host, %40…) is not shown.
    host = plain_link_host(url) if url and safe_href(url) else None
    return render("<p>{a}</p>", a=link(f"More on {host}", url)) if host else ""


def _workarounds(detail: facts.ServiceDetail) -> Markup:
    if not detail.workarounds:
        return paragraph(
            "No one has shared a workaround yet. Share one in chat with /workaround add."
        )
    items = join(
        render(
            '<li><p class="title"><strong>{title}</strong></p>{steps}{more}'
            '<p class="meta">{worked} worked · {failed} did not · shared {when}</p></li>',
            title=w.title,
            steps=render('<p class="body">{s}</p>', s=w.steps) if w.steps != w.title else "",
            more=_workaround_link(w.link),
            worked=w.worked,
            failed=w.failed,
            when=timestamp(w.created_at),
        )
        for w in detail.workarounds
    )
    return render(
        '<ol class="workarounds">{items}</ol><p class="note">Shared by people in chat '
        "communities that use outagebot; best first by recent votes. Check before you follow "
        "them.</p>",
        items=items,
    )


def _history(detail: facts.ServiceDetail, now: datetime) -> Markup:
    history = detail.history
    if detail.summary.checked_at is None and not history.incidents:
        return paragraph("No history yet: the official status page has not been read so far.")
    mttr = history.mean_time_to_recovery
    summary = f"{plural(len(history.incidents), 'incident')} · uptime {history.uptime:.2f} %" + (
        f" · mean time to recovery {format_duration(mttr)}" if mttr else ""
    )
    cells = join(
        render(
            '<li class="day {cls}" title="{label}"><span class="sr">{label}</span></li>',
            cls=_day_class(day),
            label=f"{day.day:%d %b}: "
            + (
                f"{plural(day.incidents, 'incident')}, {day.uptime:.1f} % up"
                if day.incidents
                else "no incidents"
            ),
        )
        for day in history.by_day
    )
    listed = join(
        render(
            "<li>{title} · {impact} · {when} · {lasted}</li>",
            title=link(i.title, i.url),
            impact=impact_word(i.impact),
            when=timestamp(i.started_at, style="date"),
            lasted=f"lasted {format_duration(i.resolved_at - i.started_at)}"
            if i.resolved_at
            else f"ongoing for {format_duration(now - i.started_at)}",
        )
        for i in history.incidents[:10]
    )
    return render(
        "<p>{summary}</p>"
        '<ol class="uptime" aria-label="One mark per day, oldest first">{cells}</ol>'
        '<p class="legend"><span class="key ok"></span> no incident '
        '<span class="key minor"></span> minor <span class="key major"></span> major or critical'
        '</p>{listed}<p class="note">From the official status page since outagebot began '
        "tracking it; major and critical incidents count as downtime.</p>",
        summary=summary,
        cells=cells,
        listed=render('<ul class="past">{items}</ul>', items=listed) if listed else "",
    )


def _day_class(day: facts.DayFact) -> str:
    if day.worst_impact in {"major", "critical"}:
        return "major"
    if day.worst_impact is not None:
        return "minor"
    return "ok"


def _alternatives(detail: facts.ServiceDetail) -> Markup:
    if not detail.summary.service.capabilities:
        return paragraph("We don't know what this service is used for, so no alternatives.")
    if not detail.alternatives:
        return paragraph("No service doing the same job is fully operational right now.")
    items = join(
        render(
            '<li><a href="/service/{id}">{name}</a> · {shared} · {uptime} up over 30 days</li>',
            id=a.service.id,
            name=a.service.name,
            shared=", ".join(a.shared),
            uptime=f"{a.uptime:.2f} %",
        )
        for a in detail.alternatives
    )
    return render('<ul class="alternatives">{items}</ul>', items=items)


@endpoint("html")
async def chart_png(request: web.Request) -> web.StreamResponse:
    """The 24 h report chart of a service (drawn by bot.charts, cached per minute)."""
    context = request.app[WEB]
    service = context.deps.catalog.get(request.match_info["service_id"].lower())
    if service is None:
        raise ApiError(404, "not_found", "I don't track a service with that id.")
    chart = (await context.deps.report_activity(service.id, now=context.clock())).chart
    if chart is None:
        raise ApiError(404, "not_found", "No reports or incidents in the last 24 hours to draw.")
    return conditional(
        request, chart.png, content_type="image/png", cache_control="public, max-age=60"
    )


async def static(request: web.Request) -> web.StreamResponse:
    """The stylesheet and the refresh script, shipped with the package."""
    name = request.match_info["name"]
    content_type = STATIC.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    body = resources.files("bot.web").joinpath("static").joinpath(name).read_bytes()
    return conditional(
        request,
        body,
        content_type=content_type,
        cache_control="public, max-age=300",
        extra_headers={"X-Content-Type-Options": "nosniff"},
    )
