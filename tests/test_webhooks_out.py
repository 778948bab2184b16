"""Outgoing webhooks end to end: /subscribe or the admin API, the real poller and outbox, the
real aiohttp client, and a fake receiver (an aiohttp server on 127.0.0.1, port 0)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import format_datetime
from types import TracebackType
from typing import Self

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import select

from bot.core.commands import Actor, CommandRegistry, Invocation, dispatch
from bot.core.rich import to_plain
from bot.delivery.sender import AlertDataSender, PlatformSender
from bot.delivery.webhook_address import WebhookPolicy
from bot.delivery.webhook_sender import WebhookSender, owner_notifier
from bot.delivery.worker import OutboxWorker, WorkerConfig
from bot.deps import AppDeps
from bot.sources.fetch import HttpFetcher, new_http_session
from bot.sources.poller import StatusPoller
from bot.sources.probe import HttpProber
from bot.sources.timeline import incidents_at, summary_at
from bot.store import alert_store, repository
from bot.store.engine import session_factory
from bot.store.models import DeliveryRow, SubscriptionRow
from bot.store.webhook_models import WebhookTargetRow
from bot.web.api import openapi_document
from cogs import load_cogs
from tests.conftest import REPO, FakeClock
from tests.fakes.recording_sender import RecordingSender
from tests.fakes.status_server import FakeStatusServer
from tests.helpers import catalog_for
from tests.test_alerts import TIMELINE

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
        invocation = Invocation(
            command=command,
            options=options,
            actor=Actor(platform="test", user_id="mod", is_admin=True),
            community_id="A",
            channel_id="ops-room",
        )
        reply = await dispatch(self.deps.registry, invocation, self.deps, self.clock.now)
        return "\n".join([reply.title or "", to_plain(reply.body, self.clock.now)])

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
            async with sessions() as session:
                await repository.sync_catalog(session=session, catalog=catalog)
            poller = StatusPoller(
                catalog=catalog,
                sessions=sessions,
                fetcher=HttpFetcher(http, timeout=1),
                prober=HttpProber(http),
                clock=clock,
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


rig = pytest.fixture(build_rig(allow_private=True))
strict_rig = pytest.fixture(build_rig(allow_private=False))
fragile_rig = pytest.fixture(build_rig(allow_private=True, max_failures=3))
impatient_rig = pytest.fixture(build_rig(allow_private=True, max_attempts=3, timeout=0.3))


OPENAPI = Registry().with_resource(
    "urn:openapi",
    Resource.from_contents(json.loads(openapi_document()), default_specification=DRAFT202012),
)


def conforms(document: object, schema: str) -> None:
    """The answer matches its schema in bot/web/openapi.json."""
    ref = {"$ref": f"urn:openapi#/components/schemas/{schema}"}
    Draft202012Validator(ref, registry=OPENAPI).validate(document)


def documented_verifier() -> Callable[..., bool]:
    """The verification snippet of docs/webhooks.md, run as written."""
    text = (REPO / "docs" / "webhooks.md").read_text(encoding="utf-8")
    section = text.split("## Verifying a delivery", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None, "docs/webhooks.md lost its verification snippet"
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), "docs/webhooks.md", "exec"), namespace)
    verify = namespace["verify_outagebot_signature"]
    assert callable(verify)
    return verify  # type: ignore[no-any-return]


async def test_a_subscribed_webhook_gets_signed_deliveries_that_verify(rig: Rig) -> None:
    answer = await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    secret = re.search(r"whsec_[A-Za-z0-9_-]+", answer)
    assert secret is not None
    assert "shown only this once" in answer
    again = await rig.say("subscribe", service="gemini", webhook=rig.receiver.url())
    assert "whsec_" not in again  # the secret is shown once, not on later subscriptions
    await rig.outage(minutes=30)
    await rig.drain()
    # Both services' pages show an incident: two documents, never one digest.
    assert len(rig.receiver.received) == 2
    [first] = [r for r in rig.receiver.received if b'"id":"claude"' in r.body]
    body = first.json
    verify = documented_verifier()
    timestamp = first.headers["X-Outagebot-Timestamp"]
    now = float(timestamp) + 5  # the receiver reads it a few seconds later
    assert verify(
        secret.group(0), timestamp, first.body, first.headers["X-Outagebot-Signature"], now=now
    )
    assert not verify(
        secret.group(0),
        timestamp,
        first.body + b" ",
        first.headers["X-Outagebot-Signature"],
        now=now,
    )
    assert not verify(
        "whsec_wrong", timestamp, first.body, first.headers["X-Outagebot-Signature"], now=now
    )
    assert not verify(
        secret.group(0),
        timestamp,
        first.body,
        first.headers["X-Outagebot-Signature"],
        now=now + 3600,
    )
    assert body["schema"] == "outagebot.alert.v1"
    assert body["event"] == "alert.opened"
    assert body["delivery_id"] == first.headers["X-Outagebot-Delivery"]
    assert body["service"] == {"id": "claude", "name": "Claude"}
    assert body["severity"] == "major"
    assert body["status"] == "investigating"
    incident = body["incident"]
    assert isinstance(incident, dict)
    assert incident["title"] == "Elevated errors across many models"
    links, update = body["links"], body["update"]
    assert isinstance(links, dict)
    assert str(links["incident"]).startswith("https://")
    assert isinstance(update, dict)
    assert update["text"]
    assert first.headers["Content-Type"] == "application/json"


async def test_updates_and_resolution_follow_as_state(rig: Rig) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    end = TIMELINE.updates[-1].posted_at + timedelta(minutes=2)
    minute = 0
    while TIMELINE.started_at + timedelta(minutes=minute) <= end:
        await rig.outage(minutes=minute)
        await rig.drain()
        minute += 5
    events = [
        r.json["event"]
        for r in rig.receiver.received
        if r.json["service"] == {"id": "claude", "name": "Claude"}
    ]
    assert events[0] == "alert.opened"
    assert "alert.resolved" in events
    assert set(events[1:]) <= {"alert.updated", "alert.resolved"}
    ids = [r.json["delivery_id"] for r in rig.receiver.received]
    assert len(ids) == len(set(ids))  # one request per delivery: no thread-reply duplicates
    last = rig.receiver.received[-1].json
    timestamps = last["timestamps"]
    assert isinstance(timestamps, dict)
    assert timestamps["duration_seconds"]


async def test_retries_on_5xx_and_timeouts_then_delivered_exactly_once(impatient_rig: Rig) -> None:
    rig = impatient_rig
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    rig.receiver.script.extend([503, "hang"])
    await rig.outage(minutes=30)
    await rig.drain(rounds=5)
    received = rig.receiver.received
    assert len(received) == 3  # 503, timeout, then 200
    assert len({r.json["delivery_id"] for r in received}) == 1  # the same delivery each time
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert (delivery.status, delivery.attempts) == ("done", 3)
    [target] = await rig.targets()
    assert target.enabled
    assert target.consecutive_failures == 0
    await rig.drain(rounds=2)
    assert len(rig.receiver.received) == 3  # nothing is sent twice once it was accepted


async def test_turned_off_after_repeated_permanent_failures_with_a_notice(fragile_rig: Rig) -> None:
    rig = fragile_rig
    for service in SERVICES:
        await rig.say("subscribe", service=service, webhook=rig.receiver.url())
    rig.receiver.script.extend([410, 404, 410])
    await rig.outage(minutes=30)
    await rig.drain(rounds=4)
    assert len(rig.receiver.received) == 3  # each failure is final for its delivery: no retry
    [target] = await rig.targets()
    assert not target.enabled
    assert target.consecutive_failures == 3
    assert "HTTP 410" in (target.disabled_reason or "")
    async with rig.deps.sessions() as session:
        subs = (
            await session.exec(select(SubscriptionRow).where(SubscriptionRow.platform == "webhook"))
        ).all()
    assert subs
    assert not any(s.enabled for s in subs)
    [notice] = rig.chat.calls
    assert (notice.channel.platform, notice.channel.channel_id) == ("test", "ops-room")
    assert notice.reply.title == "Webhook turned off"
    text = to_plain(notice.reply.body, rig.clock.now)
    assert "127.0.0.1" in text
    assert "3 failed deliveries in a row" in text
    assert HOOK not in text  # the path may hold the receiver's own secret
    listing = await rig.say("subscriptions")
    assert "turned off" in listing
    # The admin fixes the receiver and subscribes again: it is back on, with its old secret.
    again = await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    assert "whsec_" not in again
    [target] = await rig.targets()
    assert target.enabled
    assert target.consecutive_failures == 0


async def test_retries_used_up_count_as_a_failure(impatient_rig: Rig) -> None:
    rig = impatient_rig
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    rig.receiver.script.extend([500, 502, 503])
    await rig.outage(minutes=30)
    await rig.drain(rounds=4)
    assert len(rig.receiver.received) == 3
    [target] = await rig.targets()
    assert target.consecutive_failures == 1
    assert target.enabled
    assert "gave up after retries" in (target.last_error or "")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://[::1]:8080/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "https://loopback.test/hook",
        # The same rule as custom status pages: shared NAT and IPv6 forms embedding a private
        # IPv4 address (NAT64, 6to4, IPv4-compatible), and site-local.
        "http://100.64.0.1/hook",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:a00:1::1]/hook",
        "http://[::10.0.0.1]/hook",
        "http://[fec0::1]/hook",
    ],
)
async def test_private_targets_are_refused_at_subscribe_time(strict_rig: Rig, url: str) -> None:
    strict_rig.names["loopback.test"] = "127.0.0.1"
    answer = await strict_rig.say("subscribe", service="claude", webhook=url)
    assert "private network" in answer
    assert await strict_rig.targets() == []


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "https://"),
        ("https://user:pw@hooks.example.com/x", "user name"),
        ("https://nowhere.test/x", "does not resolve"),
        ("https:///nohost", "no host"),
    ],
)
async def test_malformed_targets_get_a_clear_answer(strict_rig: Rig, url: str, reason: str) -> None:
    answer = await strict_rig.say("subscribe", service="claude", webhook=url)
    assert reason in answer
    assert await strict_rig.targets() == []


async def test_a_name_repointed_to_loopback_is_refused_at_send_time(strict_rig: Rig) -> None:
    rig = strict_rig
    rig.names["hooks.partner.test"] = "93.184.216.34"  # public when subscribed...
    answer = await rig.say(
        "subscribe", service="claude", webhook=rig.receiver.url("hooks.partner.test")
    )
    assert "Webhook subscribed" in answer
    rig.names["hooks.partner.test"] = "127.0.0.1"  # ...then DNS points it at our own host
    await rig.outage(minutes=30)
    await rig.drain(rounds=2)
    assert rig.receiver.received == []  # the receiver on 127.0.0.1 was never contacted
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert delivery.status == "failed"
    assert "private network" in (delivery.last_error or "")
    [target] = await rig.targets()
    assert target.consecutive_failures == 1


async def test_the_request_goes_to_the_resolved_address(rig: Rig) -> None:
    """No real DNS: the name exists only in the injected resolver, and still arrives."""
    rig.names["hooks.partner.test"] = "127.0.0.1"
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url("hooks.partner.test"))
    await rig.outage(minutes=30)
    await rig.drain()
    [request] = rig.receiver.received
    assert request.headers["Host"] == f"hooks.partner.test:{rig.receiver.port}"


async def test_unsubscribe_removes_the_target_with_its_last_service(rig: Rig) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    await rig.say("subscribe", service="gemini", webhook=rig.receiver.url())
    assert "no longer" in await rig.say("unsubscribe", service="claude", webhook=rig.receiver.url())
    assert len(await rig.targets()) == 1
    assert "was not" in await rig.say("unsubscribe", service="claude", webhook=rig.receiver.url())
    await rig.say("unsubscribe", service="gemini", webhook=rig.receiver.url())
    assert await rig.targets() == []


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-5", "1e999", "soon", "http-date"])
async def test_a_receivers_bad_retry_after_delays_only_that_delivery(rig: Rig, value: str) -> None:
    await rig.say("subscribe", service="claude", webhook=rig.receiver.url())
    await rig.outage(minutes=30)
    if value == "http-date":
        value = format_datetime(rig.clock.now + timedelta(seconds=90), usegmt=True)
    rig.receiver.script.append((429, {"Retry-After": value}))
    await rig.worker.run_once()  # the round ends normally
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert (delivery.status, delivery.attempts) == ("pending", 1)
    wait = delivery.next_attempt_at - rig.clock.now
    assert timedelta(0) <= wait <= timedelta(hours=1)
    if value.endswith("GMT"):
        assert wait == timedelta(seconds=90)
    rig.clock.now += wait + timedelta(seconds=1)
    await rig.worker.run_once()
    [delivery] = [d for d in await rig.deliveries() if d.action == "post"]
    assert delivery.status == "done"
    assert len(rig.receiver.received) == 2
