"""/service add and remove: discovery against fake pages, persistence, permissions."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.core.commands import Actor, Invocation, Reply, dispatch
from bot.core.rich import to_plain
from bot.settings import Settings
from tests.conftest import FIXTURES, FakeClock
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
        invocation = Invocation(
            command=command,
            options=options,
            actor=Actor(platform="test", user_id="u1", is_admin=admin),
            community_id=community,
        )
        reply: Reply = await dispatch(
            self.app.deps.registry, invocation, self.app.deps, self.clock.now
        )
        return "\n".join([reply.title or "", to_plain(reply.body, self.clock.now)])


def settings_for(tmp_path: Path, catalog: Path, *, allow_private: bool = True) -> Settings:
    return Settings(
        _env_file=None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        catalog_path=catalog,
        allow_private_sources=allow_private,
        http_timeout_seconds=2,
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
    assert "couldn't find a status API" in text
    assert "must start with https://" in await bot.say(
        "service", action="add", name="X", url="ftp://a"
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
            other.on_new_urls, other.on_dropped_urls = new_urls.extend, dropped_urls.extend
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
            assert "private network" in text
            assert server.count("/api/v2/summary.json") == 0  # not even one request
