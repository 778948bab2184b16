"""The HTML dashboard and the badges: content, escaping, accessibility basics, caching."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser
from xml.etree import ElementTree

import aiohttp
import pytest
from multidict import CIMultiDict
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.commands import CommandRegistry
from bot.core.service_state import ServiceState
from bot.services import facts
from bot.services.deps import AppDeps
from bot.sources.catalog import ServiceDef
from bot.store import catalog_store
from bot.store.engine import session_factory
from bot.web.badges import badge_svg
from bot.web.html import Markup, escape, link, render, safe_href
from bot.web.pages import overview_sentence
from bot.web.server import WebServer, create_web_app
from tests.conftest import FakeClock
from tests.helpers import catalog_for
from tests.web_seed import (
    EVIL_TITLE,
    EVIL_UPDATE,
    EVIL_WORKAROUND,
    Seeded,
    add_a_plain_and_a_disguised_link,
    seeded_web,
)

SVG = "{http://www.w3.org/2000/svg}"
T = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class Audit(HTMLParser):
    """Collects what matters for safety and accessibility from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.handlers: list[str] = []
        self.hrefs: list[str] = []
        self.images: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.handlers += [name for name, _ in attrs if name.startswith("on")]
        if tag == "script":
            self.scripts.append(values)
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"] or "")
        if tag == "img":
            self.images.append(values)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def audit(html: str) -> Audit:
    parser = Audit()
    parser.feed(html)
    parser.close()
    return parser


async def get(seeded: Seeded, path: str) -> tuple[int, str, CIMultiDict[str]]:
    async with seeded.http.get(seeded.base + path) as response:
        return response.status, await response.text(), CIMultiDict(response.headers)


def assert_safe(page: Audit) -> None:
    assert page.scripts == [{"src": "/static/refresh.js", "defer": None}]
    assert page.handlers == []
    for href in page.hrefs:
        assert href.startswith(("/", "#", "http://", "https://")), href


async def test_overview_shows_every_service_with_state_in_words(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        status, html, headers = await get(seeded, "/")
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert '<noscript><meta http-equiv="refresh" content="60"></noscript>' in html
    page = audit(html)
    assert_safe(page)
    assert {"header", "nav", "main", "footer", "h1", "article"} <= set(page.tags)
    text = "".join(page.text)
    assert "1 of 2 services report problems." in text
    # Trouble first; the state in words next to its colour.
    assert html.index("GitHub") < html.index("Calm Git")
    assert "Partial outage" in text
    assert "Operational" in text
    assert "since 2022-11-25 16:00 UTC" in text
    assert EVIL_TITLE in text  # shown as text…
    assert "<script>alert" not in html  # …never as markup
    assert 'href="https://stspg.io/33vh8r7z43kh"' in html
    assert "User reports in the last hour: 5 (usually 0.1 an hour)" in text
    assert "Official status page" in text
    assert "Early warning: users report problems since 2022-11-25 15:40 UTC (unconfirmed)" in text


async def test_a_workaround_link_shows_its_real_host_and_a_disguised_one_is_not_linked(
    engine: AsyncEngine,
) -> None:
    async with seeded_web(engine) as seeded:
        await add_a_plain_and_a_disguised_link(seeded)
        status, html, _ = await get(seeded, "/service/github")
    assert status == 200
    page = audit(html)
    assert "More on mirror.example" in "".join(page.text)
    assert "https://mirror.example/npm" in page.hrefs
    assert "Official fix" in "".join(page.text)
    assert "evil.example" not in html


async def test_service_page_shows_timeline_history_workarounds_and_alternatives(
    engine: AsyncEngine,
) -> None:
    async with seeded_web(engine) as seeded:
        status, html, _ = await get(seeded, "/service/github")
        async with seeded.http.get(seeded.base + "/service/github/chart.png") as response:
            assert response.status == 200
            assert response.content_type == "image/png"
            assert (await response.read()).startswith(b"\x89PNG")
    assert status == 200
    page = audit(html)
    assert_safe(page)
    text = "".join(page.text)
    for heading in (
        "Open incidents",
        "Components",
        "User reports, last 24 hours",
        "Workarounds",
        "Last 90 days",
        "Alternatives working now",
    ):
        assert f">{heading}</h2>" in html
    assert html.count('<li><p class="meta"><time') == 7  # every official update, newest first
    assert EVIL_UPDATE in text
    assert "<img src=x" not in html
    assert html.index("still investigating") < html.index("We are investigating reports")
    assert "Packages" in text
    assert "Partial outage" in text
    assert EVIL_WORKAROUND in text
    assert "<b>Use</b>" not in html
    assert "1 worked · 0 did not" in text
    assert "javascript:" not in html  # the workaround's link was not http(s): no link
    assert "2 incidents · uptime 99.85 % · mean time to recovery 2 h" in text
    assert html.count('<li class="day') == 90
    assert html.count('<li class="day major"') == 2
    assert '<a href="/service/gitcalm">Calm Git</a>' in html
    (chart,) = page.images
    assert chart["src"] == "/service/github/chart.png"
    assert chart["alt"]
    assert "5 counted reports in the last 24 hours" in text


async def test_partial_main_is_the_content_alone_and_etags_work(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        status, fragment, headers = await get(seeded, "/?partial=main")
        assert status == 200
        assert fragment.startswith("<h1>Service status</h1>")
        assert "<html" not in fragment
        async with seeded.http.get(
            seeded.base + "/?partial=main", headers={"If-None-Match": headers["ETag"]}
        ) as response:
            assert response.status == 304
        seeded.clock.advance(minutes=1)  # the page says when it was made: a new version
        async with seeded.http.get(
            seeded.base + "/?partial=main", headers={"If-None-Match": headers["ETag"]}
        ) as response:
            assert response.status == 200


async def test_unknown_pages_are_friendly_and_static_files_are_served(
    engine: AsyncEngine,
) -> None:
    async with seeded_web(engine) as seeded:
        status, html, _ = await get(seeded, "/service/%3Cscript%3E")
        assert status == 404
        assert "I don't track a service with that id." in "".join(audit(html).text)
        assert 'http-equiv="refresh"' not in html  # an error page does not reload itself
        assert "<script>" not in html.replace('<script src="/static/refresh.js" defer>', "")
        status, css, headers = await get(seeded, "/static/dashboard.css")
        assert status == 200
        assert headers["Content-Type"].startswith("text/css")
        assert "http" not in css  # nothing fetched from elsewhere
        status, _js, headers = await get(seeded, "/static/refresh.js")
        assert status == 200
        assert headers["Content-Type"].startswith("text/javascript")
        assert (await get(seeded, "/static/secrets.txt"))[0] == 404
        assert (await get(seeded, "/static/..%2Fapi.py"))[0] == 404
        status, _, _ = await get(seeded, "/service/gitcalm/chart.png")
        assert status == 404  # nothing to draw for a quiet service


async def test_badges_show_state_and_are_cacheable(engine: AsyncEngine) -> None:
    async with seeded_web(engine) as seeded:
        async with seeded.http.get(seeded.base + "/badge/github.svg") as response:
            assert response.status == 200
            assert response.content_type == "image/svg+xml"
            assert response.headers["Cache-Control"] == "public, max-age=60"
            etag = response.headers["ETag"]
            svg = ElementTree.fromstring(await response.read())
        async with seeded.http.get(
            seeded.base + "/badge/github.svg", headers={"If-None-Match": etag}
        ) as response:
            assert response.status == 304
        async with seeded.http.get(seeded.base + "/badge/nope.svg") as response:
            assert response.status == 404
            missing = ElementTree.fromstring(await response.read())
    assert [t.text for t in svg.iter(f"{SVG}text")] == ["GitHub", "partial outage"]
    assert svg.get("aria-label") == "GitHub: partial outage"
    assert [t.text for t in missing.iter(f"{SVG}text")] == ["outagebot", "no such service"]


def test_badge_text_is_escaped_and_width_grows_with_it() -> None:
    hostile = "A<b>&\"Co'</b>"
    svg = ElementTree.fromstring(badge_svg(hostile, "major outage", "#c0262d"))
    assert [t.text for t in svg.iter(f"{SVG}text")] == [hostile, "major outage"]
    short = ElementTree.fromstring(badge_svg("A", "ok", "#1a7f37"))
    assert int(svg.get("width") or 0) > int(short.get("width") or 0)


def test_template_helper_escapes_by_default() -> None:
    assert render("<p>{x}</p>", x="<i>") == "<p>&lt;i&gt;</p>"
    assert render("<p>{x}</p>", x=Markup("<i>ok</i>")) == "<p><i>ok</i></p>"
    assert render('<a title="{t}">', t='"><script>') == '<a title="&quot;&gt;&lt;script&gt;">'
    assert escape(None) == ""
    assert link("x", "javascript:alert(1)") == "x"
    assert link("x", " JAVASCRIPT:alert(1)") == "x"
    assert link("<x>", "https://example.com/?a=1&b=2") == (
        '<a href="https://example.com/?a=1&amp;b=2" rel="noopener noreferrer nofollow">'
        "&lt;x&gt;</a>"
    )
    assert safe_href("//evil.example") is None
    assert safe_href("http://[::1") is None


@pytest.mark.parametrize("state", list(ServiceState))
def test_every_state_has_a_badge_colour_and_words(state: ServiceState) -> None:
    from bot.web.badges import BADGE_COLOURS, BADGE_TEXT
    from bot.web.layout import STATE_MARK

    assert BADGE_COLOURS[state]
    assert BADGE_TEXT[state]
    assert STATE_MARK[state]


async def test_a_service_never_read_claims_nothing(engine: AsyncEngine, clock: FakeClock) -> None:
    catalog = catalog_for({"dark": "http://127.0.0.1:9/api/v2/summary.json"})
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
    deps = AppDeps(catalog=catalog, sessions=sessions, registry=CommandRegistry())
    server = WebServer(create_web_app(clock=clock, deps=deps), host="127.0.0.1", port=0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{server.bound_port}"
            async with http.get(base + "/") as response:
                overview = "".join(audit(await response.text()).text)
            async with http.get(base + "/service/dark") as response:
                detail = "".join(audit(await response.text()).text)
            async with http.get(base + "/badge/dark.svg") as response:
                badge = ElementTree.fromstring(await response.read())
    finally:
        await server.stop()
    assert "No status page could be read yet, so the state of every service is unknown." in overview
    assert "Unknown" in overview
    assert "Official status page" not in overview  # the marker: nothing official is known
    assert "The official status page could not be read just now." in detail
    assert "Not known until the official status page can be read." in detail
    assert "No history yet" in detail
    assert "uptime" not in detail  # no 100 % from no data
    assert [t.text for t in badge.iter(f"{SVG}text")] == ["Dark", "unknown"]


@pytest.mark.parametrize(
    ("states", "warned", "sentence"),
    [
        (["operational", "operational"], 0, "All services are operational."),
        ([], 0, "No services are followed yet."),
        (
            ["major_outage", "unknown", "operational"],
            1,
            "1 of 3 services report problems. 1 early warning from user reports (unconfirmed). "
            "1 status page could not be read.",
        ),
        (
            ["maintenance", "unknown"],
            0,
            "No service reports problems. 1 status page could not be read.",
        ),
        (
            ["unknown"],
            0,
            "No status page could be read yet, so the state of every service is unknown.",
        ),
    ],
)
def test_overview_sentence(states: list[str], warned: int, sentence: str) -> None:
    found = [
        facts.ServiceSummary(
            service=ServiceDef(id=f"s{n}", name=f"S{n}", provider="p"),
            state=ServiceState(state),
            since=None,
            checked_at=None,
            open_incidents=0,
            incident=None,
            reports_last_hour=0,
            usual_per_hour=None,
            early_warning=facts.EarlyWarningFact("reported", T, T) if n < warned else None,
            probe_failing=False,
        )
        for n, state in enumerate(states)
    ]
    assert overview_sentence(found) == sentence
