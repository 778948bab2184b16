"""A page that renamed a component the catalog names: never "Operational", and a stale warning.

The page is `constructed_summary_anthropic_2026-10-07_renamed_api_component.json` (see
tests/fixtures/statuspage/SOURCES.md): the Claude API component is renamed while the Anthropic
API's other component (platform.claude.com) is still listed and operational. The services use
the built-in catalog's own component names, so a stale catalog entry shows up here.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.cli import main
from bot.core.service_state import ServiceState
from bot.sources.catalog import Catalog, load_catalog, parse_catalog
from bot.sources.catalog_drift import StaleNamesLog, missing_components, service_state
from bot.sources.fetch import new_http_session
from bot.sources.statuspage import parse_statuspage
from bot.store import catalog_store, service_state_store, source_store
from bot.store.engine import create_engine, session_factory
from tests.conftest import FIXTURES, FakeClock
from tests.fakes.status_server import SUMMARY_PATH, FakeStatusServer
from tests.helpers import make_poller

PAGE_FILE = (
    FIXTURES / "statuspage" / "constructed_summary_anthropic_2026-10-07_renamed_api_component.json"
)
PAGE: dict[str, Any] = json.loads(PAGE_FILE.read_text(encoding="utf-8"))
BUILT_IN = load_catalog()
ON_THE_PAGE = ("anthropic-api", "claude-ai", "claude-code")
API_NAME = "Claude API (api.anthropic.com)"  # what the built-in catalog names
CONSOLE_NAME = "platform.claude.com (formerly console.anthropic.com)"


def page_catalog(url: str) -> Catalog:
    """The built-in Anthropic services, with their real component names, reading ``url``."""
    entries = []
    for service_id in ON_THE_PAGE:
        service = BUILT_IN.get(service_id)
        assert service is not None
        entries.append(
            {
                "id": service.id,
                "name": service.name,
                "components": list(service.components),
                "source": [{"kind": "statuspage", "url": url}],
            }
        )
    return parse_catalog({"service": entries})


def renamed(page: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    changed = copy.deepcopy(page)
    for component in changed["components"]:
        if component["name"] == old:
            component["name"] = new
    return changed


async def poll_states(
    engine: AsyncEngine, clock: FakeClock, pages: list[dict[str, Any]]
) -> dict[str, ServiceState]:
    """Serve each page in turn to a real poller; the states stored after the last."""
    async with FakeStatusServer() as server, new_http_session(user_agent="outagebot-tests") as http:
        poller = await make_poller(engine, clock, page_catalog(server.url(SUMMARY_PATH)), http)
        for page in pages:
            server.set_json(SUMMARY_PATH, page)
            await poller.poll_all()
            clock.advance(seconds=31)
    async with session_factory(engine)() as session:
        records = await service_state_store.service_states(session=session)
    return {service_id: records[service_id].state for service_id in ON_THE_PAGE}


def stale_records(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "catalog may be stale" in r.getMessage()]


# --- the poller ------------------------------------------------------------------------------


async def test_renamed_component_never_reads_operational(
    engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    later = copy.deepcopy(PAGE)  # a second full read: same names, the incident moved on
    later["incidents"][0]["status"] = "monitoring"
    with caplog.at_level(logging.INFO, logger="bot.sources.poller"):
        states = await poll_states(engine, clock, [PAGE, later])

    # Its console is fine, but the page is partially degraded by the API it no longer names.
    assert states["anthropic-api"] is ServiceState.PARTIAL_OUTAGE
    # Services whose names are all on the page are judged by their components as before.
    assert states["claude-ai"] is ServiceState.OPERATIONAL
    assert states["claude-code"] is ServiceState.DEGRADED
    # One warning for the stale entry, not one per poll.
    [warning] = stale_records(caplog)
    assert "anthropic-api" in warning
    assert repr(API_NAME) in warning
    assert CONSOLE_NAME not in warning


async def test_every_named_component_renamed_reads_the_page(
    engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    page = renamed(PAGE, CONSOLE_NAME, "Claude Console (platform.claude.com)")
    with caplog.at_level(logging.WARNING, logger="bot.sources.poller"):
        states = await poll_states(engine, clock, [page])
    assert states["anthropic-api"] is ServiceState.PARTIAL_OUTAGE
    assert len(stale_records(caplog)) == 1


async def test_names_back_on_the_page_end_the_warning(
    engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    fixed = renamed(PAGE, "Claude API (api.claude.com, formerly api.anthropic.com)", API_NAME)
    with caplog.at_level(logging.INFO, logger="bot.sources.poller"):
        states = await poll_states(engine, clock, [PAGE, fixed])
    assert states["anthropic-api"] is ServiceState.PARTIAL_OUTAGE  # by its own component now
    assert len(stale_records(caplog)) == 1
    assert any("every named component is on" in r.getMessage() for r in caplog.records)


async def test_case_and_blanks_do_not_make_a_name_missing(
    engine: AsyncEngine, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    page = renamed(PAGE, "Claude Code", "  claude   CODE ")
    page = renamed(page, "claude.ai", "Claude.AI")
    with caplog.at_level(logging.WARNING, logger="bot.sources.poller"):
        states = await poll_states(engine, clock, [page])
    assert states["claude-code"] is ServiceState.DEGRADED
    assert states["claude-ai"] is ServiceState.OPERATIONAL
    assert all("claude-code" not in m and "claude-ai" not in m for m in stale_records(caplog))


# --- the rule itself ---------------------------------------------------------------------------


def test_missing_names_and_the_state_they_give() -> None:
    page = parse_statuspage(PAGE)
    assert missing_components(page, (API_NAME, CONSOLE_NAME)) == (API_NAME,)
    assert missing_components(page, ("Claude Code",)) == ()
    # A payload without components (status.json, a pushed incident) proves nothing missing.
    assert missing_components(parse_statuspage({"status": PAGE["status"]}), (API_NAME,)) == ()
    assert service_state(page, (API_NAME, CONSOLE_NAME)) is ServiceState.PARTIAL_OUTAGE
    assert service_state(None, (API_NAME,)) is ServiceState.UNKNOWN
    # The page's own indicator says "none", but an open critical incident is the page's word too.
    calm_header = copy.deepcopy(PAGE)
    calm_header["status"] = {"indicator": "none", "description": "All Systems Operational"}
    calm_header["incidents"][0]["impact"] = "critical"
    assert service_state(parse_statuspage(calm_header), (API_NAME, CONSOLE_NAME)) is (
        ServiceState.MAJOR_OUTAGE
    )


def test_stale_names_log_warns_on_change_and_forgets_removed_services(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stale_log = StaleNamesLog(logging.getLogger("tests.stale"))
    service = BUILT_IN.get("anthropic-api")
    assert service is not None
    page = parse_statuspage(PAGE)
    with caplog.at_level(logging.INFO, logger="tests.stale"):
        stale_log.observe(service, "https://status.claude.com", page)
        stale_log.observe(service, "https://status.claude.com", page)
        stale_log.forget(service.id)  # a removed custom service leaves nothing behind
        stale_log.observe(service, "https://status.claude.com", page)
    assert len(stale_records(caplog)) == 2


def test_built_in_catalog_names_are_on_the_pages_we_have() -> None:
    """Each component name the built-in catalog uses is on a real page we hold, or listed here."""
    seen: set[str] = set()
    for path in (FIXTURES / "statuspage").glob("*.json"):
        payload = json.loads(path.read_text(encoding="utf-8"))
        for component in payload.get("components") or []:
            seen.add(" ".join(component["name"].split()).casefold())
    # Names only third-party monitors' configs show (docs/catalog.md); no payload here has them.
    unseen_in_payloads = {
        "claude api (api.anthropic.com)",
        "platform.claude.com (formerly console.anthropic.com)",
        "claude.ai",
        "claude code",
        "replicate",
    }
    for service in BUILT_IN:
        for name in service.components:
            folded = " ".join(name.split()).casefold()
            assert folded in seen or folded in unseen_in_payloads, (service.id, name)


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}")
    return tmp_path


def test_check_warns_on_stderr_and_keeps_json_clean(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "--json", str(PAGE_FILE)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["indicator"] == "major"  # stdout is only the contract
    [line] = err.splitlines()
    assert line.startswith("outagebot check: catalog may be stale: anthropic-api")
    assert repr(API_NAME) in line

    assert main(["check", str(PAGE_FILE)]) == 0
    out, err = capsys.readouterr()
    assert "Partially Degraded Service" in out
    assert "anthropic-api" in err


def test_check_of_a_page_with_every_name_is_quiet(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fixed = renamed(PAGE, "Claude API (api.claude.com, formerly api.anthropic.com)", API_NAME)
    path = cli_env / "summary.json"
    path.write_text(json.dumps(fixed), encoding="utf-8")
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().err == ""


async def store_page(database_url: str, clock: FakeClock) -> None:
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            await catalog_store.sync_catalog(session=session, catalog=BUILT_IN)
            url = "https://status.claude.com/api/v2/summary.json"
            source = await source_store.get_source(session=session, url=url)
            assert source is not None
            await source_store.record_snapshot(
                session=session,
                source=source,
                snapshot=parse_statuspage(PAGE),
                etag=None,
                last_modified=None,
                now=clock.now,
            )
            await session.commit()
    finally:
        await engine.dispose()


def test_services_warns_about_the_stored_page(
    cli_env: Path, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["services"]) == 0  # no database yet: the listing alone, nothing created
    assert "!" not in capsys.readouterr().out
    assert not (cli_env / "cli.db").exists()

    assert main(["db", "upgrade"]) == 0
    asyncio.run(store_page(f"sqlite+aiosqlite:///{cli_env / 'cli.db'}", clock))
    capsys.readouterr()
    assert main(["services"]) == 0
    out = capsys.readouterr().out
    block = out.split("anthropic-api: ", 1)[1].split("\nclaude-ai: ", 1)[0]
    assert f"    ! catalog may be stale: anthropic-api names component(s) {API_NAME!r}" in block
    assert out.count("catalog may be stale") == 1
    assert main(["services", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == len(BUILT_IN)
    assert "anthropic-api" in err
