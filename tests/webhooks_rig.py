"""Outgoing webhooks' test rig: a fake receiver, the real poller and outbox, and the
documented schemas; shared by the webhook delivery and admin API tests."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Self

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import CommandRegistry
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.delivery.webhook_sender import WebhookSender, owner_notifier
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.net.webhook_address import WebhookPolicy
from bot.services.deps import AppDeps
from bot.sources.fetch import new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.timeline import incidents_at, summary_at
from bot.store import alert_store
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow
from bot.store.webhook_models import WebhookTargetRow
from bot.testing import TestAdapter, headline_text
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import FakeStatusServer
from tests.helpers import ANTHROPIC_TIMELINE, catalog_for, make_poller, real_timeline

TIMELINE = real_timeline(ANTHROPIC_TIMELINE)

HOOK = "/hook"
SERVICES = ("claude", "gemini", "mistral")


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, object]:
        data: dict[str, object] = json.loads(self.body)
        return data


@dataclass
class Receiver:
    """A webhook receiver: answers each request with the next scripted status (200 when the
    script is empty), or (status, headers); ``"hang"`` never answers (until it closes)."""

    script: deque[int | str | tuple[int, dict[str, str]]] = field(default_factory=deque)
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _closing: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post(HOOK, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{HOOK}"

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        step = self.script.popleft() if self.script else 200
        if step == "hang":
            await self._closing.wait()
            return web.Response(status=200)
        if isinstance(step, tuple):
            return web.Response(status=step[0], headers=step[1])
        return web.Response(status=int(step))


@dataclass
class Rig:
    receiver: Receiver
    status_page: FakeStatusServer
    poller: StatusPoller
    worker: OutboxWorker
    webhooks: WebhookSender
    chat: RecordingSender
    deps: AppDeps
    clock: FakeClock
    names: dict[str, str]
    """Host name → address, for the injected resolver."""

    async def say(self, command: str, **options: str) -> str:
        moderator = TestAdapter.of(self.deps, self.clock, user="mod", community="A")
        reply = await moderator.invoke(command, options, channel="ops-room", admin=True)
        return headline_text(reply, self.clock.now)

    async def outage(self, minutes: float = 30) -> None:
        """Every service's page shows the real incident as it stood ``minutes`` in."""
        self.clock.now = TIMELINE.started_at + timedelta(minutes=minutes)
        for service in SERVICES:
            self.status_page.set_json(
                f"/{service}/api/v2/summary.json", summary_at(TIMELINE, self.clock.now)
            )
            self.status_page.set_json(
                f"/{service}/api/v2/incidents.json", incidents_at(TIMELINE, self.clock.now)
            )
        await self.poller.poll_all()

    async def drain(self, rounds: int = 1) -> None:
        """Run the worker, moving the clock past any backoff between rounds."""
        for _ in range(rounds):
            await self.worker.run_once()
            self.clock.advance(seconds=700)

    async def targets(self) -> list[WebhookTargetRow]:
        async with self.deps.sessions() as session:
            return list((await session.exec(select(WebhookTargetRow))).all())

    async def deliveries(self) -> list[DeliveryRow]:
        async with self.deps.sessions() as session:
            query = select(DeliveryRow).where(DeliveryRow.platform == "webhook")
            return list((await session.exec(query)).all())


def build_rig(
    *, allow_private: bool, max_failures: int = 5, max_attempts: int = 10, timeout: float = 5.0
) -> Callable[..., AsyncIterator[Rig]]:
    async def make(engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[Rig]:
        names: dict[str, str] = {}

        async def resolver(host: str, port: int) -> list[str]:
            if host not in names:
                raise OSError("no such host (the test resolver knows only its names)")
            return [names[host]]

        policy = WebhookPolicy(resolver=resolver, allow_private=allow_private)
        async with (
            Receiver() as receiver,
            FakeStatusServer() as status_page,
            new_http_session(user_agent="tests") as http,
        ):
            catalog = catalog_for(
                {s: status_page.url(f"/{s}/api/v2/summary.json") for s in SERVICES}
            )
            sessions = session_factory(engine)
            poller = await make_poller(
                engine,
                clock,
                catalog,
                http,
                record_events=lambda s, e, n: alert_store.record_alert_events(
                    session=s, events=e, now=n
                ),
            )
            deps = AppDeps(
                catalog=catalog,
                sessions=sessions,
                registry=load_cogs(CommandRegistry()),
                webhook_policy=policy,
            )
            chat = RecordingSender()
            senders: dict[str, PlatformSender | AlertDataSender] = {"test": chat}
            webhooks = WebhookSender(
                sessions=sessions,
                clock=clock,
                policy=policy,
                user_agent="tests",
                timeout=timeout,
                max_failures=max_failures,
                on_disabled=owner_notifier(senders),
            )
            senders["webhook"] = webhooks
            worker = OutboxWorker(
                sessions=sessions,
                senders=senders,
                catalog=catalog,
                clock=clock,
                config=WorkerConfig(max_attempts=max_attempts),
                on_outcome=webhooks.note_outcome,
            )
            clock.now = TIMELINE.started_at - timedelta(minutes=5)
            yield Rig(receiver, status_page, poller, worker, webhooks, chat, deps, clock, names)

    return make
