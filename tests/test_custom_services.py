"""/service add and remove: discovery against fake pages, persistence, permissions."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.core.detection import DetectionConfig
from bot.net.address_policy import AddressPolicy
from bot.settings import Settings
from bot.testing import TestAdapter, headline_text
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.fake_dns import FakeDns
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer, Step
from tests.helpers import write_catalog

ITERABLE = json.loads(
    (FIXTURES / "statuspage" / "statuspage_summary_iterable_2017-08-22.json").read_text()
)
ATOM = (FIXTURES / "feeds" / "statuspage_github_2026-02-04-history.atom.xml").read_bytes()


@dataclass
class Bot:
    app: App
    server: FakeStatusServer
    clock: FakeClock

    async def say(
        self, command: str, *, community: str = "guild-1", admin: bool = True, **options: str
    ) -> str:
        reply = await TestAdapter.of(self.app.deps, self.clock).invoke(
            command, options, community=community, admin=admin
        )
        return headline_text(reply, self.clock.now)


NOT_READABLE = "couldn't read a status page at that address"


def settings_for(
    tmp_path: Path, catalog: Path, *, allow_private: bool = True, timeout: float = 2
) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=catalog,
        allow_private_sources=allow_private,
        http_timeout_seconds=timeout,
    )


@pytest.fixture
async def bot(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Bot]:
    async with FakeStatusServer() as server:
        server.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": server.url("/builtin" + SUMMARY_PATH)}
        )
        async with open_app(settings_for(tmp_path, catalog), clock=clock) as app:
            yield Bot(app, server, clock)


async def test_add_a_statuspage_site_then_status_answers(bot: Bot) -> None:
    bot.server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
    text = await bot.say("service", action="add", name="Acme API", url=bot.server.url("/acme/"))
    assert "Now following Acme API" in text
    assert "Statuspage API" in text
    status = await bot.say("status", service="acme api")
    assert "Acme API status" in status
    assert "Operational" in status


async def test_add_finds_a_feed_linked_from_an_html_page(bot: Bot) -> None:
    bot.server.set_script("/page/api/v2/summary.json", [Step(status=404)])
    bot.server.set_body(
        "/page/",
        b'<html><head><link rel="alternate" type="application/atom+xml" '
        b'href="/page/history.atom"></head></html>',
        content_type="text/html",
    )
    bot.server.set_body("/page/history.atom", ATOM, content_type="application/atom+xml")
    text = await bot.say("service", action="add", name="Feedy", url=bot.server.url("/page/"))
    assert "RSS/Atom feed" in text
    assert bot.app.deps.catalog.resolve("feedy") is not None


async def test_add_explains_what_went_wrong(bot: Bot) -> None:
    bot.server.set_body("/nothing/", b"<html>hello</html>", content_type="text/html")
    text = await bot.say("service", action="add", name="Nothing", url=bot.server.url("/nothing/"))
    assert "couldn't read a status page at that address" in text
    assert "must start with https://" in await bot.say(
        "service", action="add", name="X", url="ftp://a"
    )
    assert "invalid port" in await bot.say(
        "service", action="add", name="X", url="http://status.acme.test:99999/"
    )
    assert "exists already" in await bot.say(
        "service", action="add", name="builtin", url=bot.server.url("/")
    )
    assert "needs the service's name" in await bot.say(
        "service", action="add", url=bot.server.url("/")
    )


async def test_only_admins_and_only_the_adding_community_may_change(bot: Bot) -> None:
    bot.server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
    url = bot.server.url("/acme/")
    assert "Only server admins" in await bot.say(
        "service", admin=False, action="add", name="Acme", url=url
    )
    await bot.say("service", action="add", name="Acme", url=url)
    refused = await bot.say("service", community="guild-2", action="remove", name="acme")
    assert "Only the community that added" in refused
    assert (
        "only services added with /service add"
        in (await bot.say("service", action="remove", name="builtin")).lower()
    )
    assert "no longer follow Acme" in await bot.say("service", action="remove", name="acme")
    assert bot.app.deps.catalog.resolve("acme") is None


async def test_custom_services_survive_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    async with FakeStatusServer() as server:
        server.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": server.url("/builtin" + SUMMARY_PATH)}
        )
        async with open_app(settings_for(tmp_path, catalog), clock=clock) as app:
            await Bot(app, server, clock).say(
                "service", action="add", name="Acme", url=server.url("/acme/")
            )
        async with open_app(settings_for(tmp_path, catalog), clock=clock) as app:
            assert app.deps.catalog.resolve("acme") is not None
            assert server.url("/acme" + SUMMARY_PATH) in app.poller.urls


async def test_another_process_follows_added_and_removed_services(
    tmp_path: Path, clock: FakeClock
) -> None:
    """Two processes on one database: what one adds, the other polls after its refresh."""
    async with FakeStatusServer() as server:
        server.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": server.url("/builtin" + SUMMARY_PATH)}
        )
        acme_url = server.url("/acme" + SUMMARY_PATH)
        async with (
            open_app(settings_for(tmp_path, catalog), clock=clock) as first,
            open_app(settings_for(tmp_path, catalog), clock=clock) as second,
        ):
            other = second.deps.custom_services
            assert other is not None
            new_urls: list[str] = []
            dropped_urls: list[str] = []
            other.on_new_urls.subscribe(new_urls.extend)
            other.on_dropped_urls.subscribe(dropped_urls.extend)
            assert await other.refresh() == ([], [])

            await Bot(first, server, clock).say(
                "service", action="add", name="Acme", url=server.url("/acme/")
            )
            assert second.deps.catalog.resolve("acme") is None  # not until it refreshes
            assert await other.refresh() == (["custom-acme"], [])
            assert second.deps.catalog.resolve("acme") is not None
            assert acme_url in second.poller.urls
            assert new_urls == [acme_url]
            assert await other.refresh() == ([], [])  # nothing twice

            await Bot(first, server, clock).say("service", action="remove", name="acme")
            assert await other.refresh() == ([], ["custom-acme"])
            assert second.deps.catalog.resolve("acme") is None
            assert acme_url not in second.poller.urls
            assert dropped_urls == [acme_url]


async def test_private_addresses_are_refused_by_default(tmp_path: Path, clock: FakeClock) -> None:
    async with FakeStatusServer() as server:
        server.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": server.url("/builtin" + SUMMARY_PATH)}
        )
        async with open_app(
            settings_for(tmp_path, catalog, allow_private=False), clock=clock
        ) as app:
            text = await Bot(app, server, clock).say(
                "service", action="add", name="Sneaky", url=server.url("/")
            )
            assert "couldn't read a status page at that address" in text
            assert server.count("/api/v2/summary.json") == 0  # not even one request


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_every_failure_reads_the_same(tmp_path: Path, clock: FakeClock) -> None:
    """No port scanner: a refused address, a closed port, a timeout and a page with no status
    source all get one answer, so an admin learns nothing about what listens where."""
    async with FakeStatusServer() as server:
        server.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        server.set_body("/nothing/", b"<html>hello</html>", content_type="text/html")
        server.set_script("/slow/", [Step(hang=True)])
        server.set_script("/slow" + SUMMARY_PATH, [Step(hang=True)])
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": server.url("/builtin" + SUMMARY_PATH)}
        )
        answers: dict[str, str] = {}
        strict = settings_for(tmp_path, catalog, allow_private=False, timeout=0.3)
        async with open_app(strict, clock=clock) as app:
            answers["refused address"] = await Bot(app, server, clock).say(
                "service", action="add", name="Probe", url=server.url("/nothing/")
            )
        lenient = settings_for(tmp_path, catalog, allow_private=True, timeout=0.3)
        async with open_app(lenient, clock=clock) as app:
            bot = Bot(app, server, clock)
            for case, url in {
                "closed port": f"http://127.0.0.1:{closed_port()}/",
                "timeout": server.url("/slow/"),
                "no status source": server.url("/nothing/"),
            }.items():
                answers[case] = await bot.say("service", action="add", name="Probe", url=url)
    assert NOT_READABLE in answers["refused address"]
    assert set(answers.values()) == {answers["refused address"]}, answers


@dataclass
class GuardedBot:
    """A bot whose custom services resolve through a fake DNS. `page`'s one address and port
    stand in for a public host (the test's explicit allowance); `inside` stands in for a
    service in our network, which the rule refuses."""

    bot: Bot
    dns: FakeDns
    inside: FakeStatusServer

    def page_url(self, path: str) -> str:
        """`path` on the allowed page, by a name the fake DNS knows."""
        return f"http://status.acme.test:{self.bot.server.port}{path}"


@pytest.fixture
async def guarded(tmp_path: Path, clock: FakeClock) -> AsyncIterator[GuardedBot]:
    dns = FakeDns()
    dns.point("status.acme.test", "127.0.0.1")
    async with FakeStatusServer() as page, FakeStatusServer() as inside:
        page.set_json("/builtin" + SUMMARY_PATH, ITERABLE)
        catalog = write_catalog(
            tmp_path / "catalog.toml", {"builtin": page.url("/builtin" + SUMMARY_PATH)}
        )
        policy = AddressPolicy(
            resolver=dns.resolve, allowed_endpoints=frozenset({("127.0.0.1", page.port)})
        )
        settings = settings_for(tmp_path, catalog, allow_private=False)
        async with open_app(settings, clock=clock, source_policy=policy) as app:
            yield GuardedBot(Bot(app, page, clock), dns, inside)


async def test_an_allowed_page_is_added_by_name(guarded: GuardedBot) -> None:
    guarded.bot.server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
    text = await guarded.bot.say(
        "service", action="add", name="Acme", url=guarded.page_url("/acme/")
    )
    assert "Now following Acme" in text
    assert guarded.dns.lookups  # through the policy's resolver, not the system's


async def test_a_redirect_into_our_network_is_refused_during_discovery(
    guarded: GuardedBot,
) -> None:
    page, inside = guarded.bot.server, guarded.inside
    inside.set_json("/acme" + SUMMARY_PATH, ITERABLE)
    page.set_script("/moved" + SUMMARY_PATH, [Step.redirect(inside.url("/acme" + SUMMARY_PATH))])
    page.set_script("/moved/", [Step.redirect(inside.url("/acme/"))])

    text = await guarded.bot.say(
        "service", action="add", name="Moved", url=guarded.page_url("/moved/")
    )

    assert NOT_READABLE in text
    assert page.count("/moved" + SUMMARY_PATH) == 1  # the allowed hop was asked...
    assert inside.count("/acme" + SUMMARY_PATH) == 0  # ...the private one never
    assert guarded.bot.app.deps.catalog.resolve("moved") is None


async def test_a_feed_link_into_our_network_is_refused(
    guarded: GuardedBot, caplog: pytest.LogCaptureFixture
) -> None:
    page, inside = guarded.bot.server, guarded.inside
    inside.set_body("/history.atom", ATOM, content_type="application/atom+xml")
    page.set_script("/page" + SUMMARY_PATH, [Step(status=404)])
    page.set_body(
        "/page/",
        b'<html><head><link rel="alternate" type="application/atom+xml" href="'
        + inside.url("/history.atom").encode()
        + b'"></head></html>',
        content_type="text/html",
    )

    with caplog.at_level(logging.INFO, logger="bot.sources.discovery"):
        text = await guarded.bot.say(
            "service", action="add", name="Linky", url=guarded.page_url("/page/")
        )

    assert NOT_READABLE in text
    # The operator, not the admin, learns why: the link's address was refused.
    assert "history.atom: address not allowed" in caplog.text
    assert page.count("/page/") == 1
    assert inside.count("/history.atom") == 0


async def test_a_stored_page_whose_name_now_points_inside_is_refused_at_poll_time(
    guarded: GuardedBot,
) -> None:
    bot = guarded.bot
    bot.server.set_json("/acme" + SUMMARY_PATH, ITERABLE)
    await bot.say("service", action="add", name="Acme", url=guarded.page_url("/acme/"))
    [url] = [u for u in bot.app.poller.urls if "status.acme.test" in u]
    asked = bot.server.count("/acme" + SUMMARY_PATH)
    assert "Operational" in await bot.say("status", service="acme")

    guarded.dns.point("status.acme.test", "10.0.0.1")  # the name's owner repoints it
    looked_up, polls = len(guarded.dns.lookups), DetectionConfig().source_failures_to_stale
    for _ in range(polls):  # that many failures in a row make the source stale
        bot.clock.advance(minutes=20)  # past the poller's backoff
        await bot.app.poller.poll(url)

    assert bot.server.count("/acme" + SUMMARY_PATH) == asked
    assert len(guarded.dns.lookups) == looked_up + polls  # looked up again at every poll
    status = await bot.say("status", service="acme")
    assert "Unknown" in status
