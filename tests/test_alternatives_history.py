"""/alternatives and /history through the neutral dispatch, on stored incident data."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.core.commands import CommandRegistry
from bot.core.service_state import ServiceState
from bot.services.alternatives import operational_alternatives
from bot.services.deps import AppDeps
from bot.sources.catalog import load_catalog, parse_catalog
from bot.store import catalog_store, detection_store, service_state_store, source_store
from bot.store.engine import session_factory
from bot.testing import TestAdapter
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.helpers import incident, snapshot


def url(name: str) -> str:
    return f"https://{name}.example/api/v2/summary.json"


SERVICES = {
    # id: (capabilities, upstreams, state)
    "down": (["chat", "code"], ["cloudx"], ServiceState.MAJOR_OUTAGE),
    "same-cloud": (["chat"], ["cloudx"], ServiceState.OPERATIONAL),
    "good-chat": (["chat", "code"], [], ServiceState.OPERATIONAL),
    "flaky-chat": (["chat"], [], ServiceState.OPERATIONAL),
    "degraded": (["chat"], [], ServiceState.DEGRADED),
    "images": (["image"], [], ServiceState.OPERATIONAL),
}
CATALOG = parse_catalog(
    {
        "service": [
            {
                "id": sid,
                "name": sid.replace("-", " ").title(),
                "capabilities": caps,
                "upstreams": ups,
                "source": [{"kind": "statuspage", "url": url(sid)}],
            }
            for sid, (caps, ups, _) in SERVICES.items()
        ]
    }
)


async def ask(deps: AppDeps, clock: FakeClock, line: str) -> str:
    return await TestAdapter.of(deps, clock, user="u", community="c").text(line)


@pytest.fixture
async def deps(engine: AsyncEngine, clock: FakeClock) -> AppDeps:
    sessions = session_factory(engine)
    now = clock.now
    histories = {
        "down": (
            incident(
                "d-open",
                started=now - timedelta(minutes=50),
                updates=(("investigating", "Errors.", now - timedelta(minutes=50)),),
            ),
            incident(
                "d-1",
                started=now - timedelta(days=3),
                resolved=now - timedelta(days=3) + timedelta(hours=2),
                updates=(("resolved", "Fixed.", now - timedelta(days=3) + timedelta(hours=2)),),
            ),
            incident(
                "d-2",
                impact="minor",
                started=now - timedelta(days=12),
                resolved=now - timedelta(days=12) + timedelta(hours=1),
                updates=(("resolved", "Fixed.", now - timedelta(days=12)),),
            ),
            incident(
                "d-old",
                started=now - timedelta(days=100),
                resolved=now - timedelta(days=100) + timedelta(hours=1),
                updates=(("resolved", "Fixed.", now - timedelta(days=100)),),
            ),
        ),
        "flaky-chat": (
            incident(
                "f-1",
                started=now - timedelta(days=5),
                resolved=now - timedelta(days=5) + timedelta(hours=12),
                updates=(("resolved", "Fixed.", now - timedelta(days=5)),),
            ),
        ),
    }
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=CATALOG)
        for sid, (_, _, state) in SERVICES.items():
            source = await source_store.get_source(session=session, url=url(sid))
            assert source is not None
            past = histories.get(sid, ())
            await source_store.record_push(
                session=session, source=source, snapshot=snapshot(incidents=past), now=now
            )
            await detection_store.link_incidents(
                session=session,
                service_id=sid,
                source_id=source.id or 0,
                external_ids=[i.id for i in past],
            )
            await service_state_store.set_service_state(
                session=session, service_id=sid, state=state, now=now
            )
        await session.commit()
    return AppDeps(catalog=CATALOG, sessions=sessions, registry=load_cogs(CommandRegistry()))


async def test_alternatives_operational_same_job_not_behind_the_failing_upstream(
    deps: AppDeps, clock: FakeClock
) -> None:
    answer = await ask(deps, clock, "alternatives down")
    assert "Good Chat" in answer
    assert "Flaky Chat" in answer
    assert "Same Cloud" not in answer  # shares the failing upstream
    assert "Degraded" not in answer.split("\n", 2)[2]  # not operational
    assert "Images" not in answer  # another job
    assert answer.index("Good Chat") < answer.index("Flaky Chat")  # more shared tags first
    assert "100.00 % up over 30 days" in answer
    assert "98.33 % up over 30 days" in answer  # 12 h down in 30 days
    nothing = await ask(deps, clock, "alternatives images")
    assert "I don't track another service that does the same job (image)" in nothing
    assert "I don't track" in await ask(deps, clock, "alternatives nosuch")


@pytest.mark.parametrize(
    ("down", "suggested", "never"),
    [
        # GitHub keeps code; the LLMs that write code are another job, as is web hosting.
        ("github", set(), {"anthropic-api", "openai-api", "claude-code", "vercel"}),
        # A Copilot outage: other code assistants are what a developer would switch to.
        ("github-copilot", {"cursor", "claude-code"}, {"github", "vercel"}),
        # A model host is not a web host.
        ("replicate", {"huggingface", "stability"}, {"cloudflare", "aws", "vercel"}),
    ],
)
async def test_alternatives_on_the_real_catalog_do_the_same_job(
    engine: AsyncEngine, clock: FakeClock, down: str, suggested: set[str], never: set[str]
) -> None:
    catalog = load_catalog()
    sessions = session_factory(engine)
    async with sessions() as session:
        await catalog_store.sync_catalog(session=session, catalog=catalog)
        for service in catalog:
            state = ServiceState.MAJOR_OUTAGE if service.id == down else ServiceState.OPERATIONAL
            await service_state_store.set_service_state(
                session=session, service_id=service.id, state=state, now=clock.now
            )
        await session.commit()
        target = catalog.get(down)
        assert target is not None
        found = await operational_alternatives(
            session=session, catalog=catalog, service=target, now=clock.now
        )
    ids = {a.service.id for a in found}
    assert suggested <= ids
    assert not ids & never
    if not suggested:  # nothing tracked does GitHub's job: say so, not "none is operational"
        deps = AppDeps(catalog=catalog, sessions=sessions, registry=load_cogs(CommandRegistry()))
        answer = await ask(deps, clock, f"alternatives {down}")
        assert "I don't track another service that does the same job (code-hosting)" in answer


async def test_history_lists_incidents_uptime_and_mttr(deps: AppDeps, clock: FakeClock) -> None:
    answer = await ask(deps, clock, "history down")
    assert "Last 30 days: 3 incidents" in answer
    # Downtime: 2 h resolved major + 50 min open major = 170 min of 30 days.
    assert "uptime 99.61 %" in answer
    assert "mean time to recovery 1 h 30 min" in answer  # (2 h + 1 h) / 2
    assert "Incident d-open" in answer
    assert "ongoing for 50 min" in answer
    assert "lasted 2 h" in answer
    assert "https://status.example.com/incidents/d-1" in answer
    assert "Incident d-old" not in answer
    longer = await ask(deps, clock, "history down 120")
    assert "Last 120 days: 4 incidents" in longer
    assert "Incident d-old" in longer
    calm = await ask(deps, clock, "history images 7")
    assert "No incidents recorded" in calm
    assert "uptime 100.00 %" in calm
    assert "between 1 and 365" in await ask(deps, clock, "history down 400")
