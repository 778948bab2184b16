"""The Discord gateway drops in the middle of a fan-out: deliveries go on, the bot comes back.

The real discord.py client (our adapter) holds a gateway session with the fake Discord while the
real outbox worker and `DiscordSender` post one incident to many channels in three guilds over
REST, then edit every post and reply in its thread. Partway through each fan-out the gateway
closes — resumably (4000), and once for good (4009: the RESUME is refused with INVALID_SESSION
and the client identifies afresh) — and the same blip loses the answer to one REST post. The
gateway stays down until several more writes went out, which shows the fan-out never waits for
it. An interaction that reached the bot just before each drop is answered while the gateway is
still down (answers go over REST); one sent during a resumable outage is replayed on RESUME and
answered then. After a fresh IDENTIFY Discord replays nothing: such an interaction is lost.

The writes are paced (a limiter the worker awaits) only so that each drop lands mid-way whatever
the machine's speed. ``CHAOS_SCALE`` multiplies the channel count; figures print with ``-s``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col, select

from bot.adapters.discord.sender import DiscordSender, GlobalRateLimiter
from bot.core.commands import CommandRegistry
from bot.core.events import EventKind
from bot.delivery.worker import OutboxWorker
from bot.services.deps import AppDeps
from bot.store.engine import session_factory
from bot.store.models import AlertMessageRow, DeliveryRow, SubscriptionRow
from bot.store.subscription_store import Scope
from cogs import load_cogs
from tests.conftest import FakeClock
from tests.discord_harness import WatchedDiscordAdapter, config_for, embed_of, slash
from tests.fakes import discord_server
from tests.fakes.discord_server import Call, FakeDiscord
from tests.helpers import SVC_CATALOG, outage_event, record_event, subscribe_channels

SCALE = float(os.environ.get("CHAOS_SCALE", "1"))
CHANNELS = max(30, int(90 * SCALE))
GUILDS = ("410000000000000001", "410000000000000002", "410000000000000003")
DURING = max(4, CHANNELS // 20)
"""Writes that must reach Discord while the gateway is down before it may come back."""
WRITE = re.compile(r"/channels/\d+/messages(?:/\d+)?(?:/threads)?")
"""Posts, edits, thread starts and thread replies: the fan-out's progress."""
MAX_ROUNDS = 200
WAIT = 20.0  # seconds; only reached when something hangs


@dataclass
class Outage:
    code: int
    resumable: bool
    writes_at_drop: int
    sessions_at_drop: int
    writes_during: int = 0
    answered_while_down: bool = False


@dataclass
class Conductor:
    """Counts the fan-out's writes at the fake, paces them, and drops the gateway on cue."""

    fake: FakeDiscord
    allowed: float = float("inf")
    writes: int = 0
    current: Outage | None = None
    outages: list[Outage] = field(default_factory=list)
    cut_next_post: bool = False
    cuts: int = 0
    _waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = field(default_factory=list)

    def sessions(self) -> int:
        return self.fake.gateway.identifies + self.fake.gateway.resumes

    def inject(self, call: Call) -> discord_server.Injected:
        """Called by the fake for every REST request, before it acts."""
        answer: discord_server.Injected = None
        if call.method in ("POST", "PATCH") and WRITE.fullmatch(call.path):
            self.writes += 1
            outage = self.current
            if outage is not None and self.sessions() == outage.sessions_at_drop:
                outage.writes_during += 1
            if self.cut_next_post and call.method == "POST" and call.path.endswith("/messages"):
                # The blip that took the gateway also loses this post's answer (it was made).
                self.cut_next_post, answer = False, discord_server.DROP_AFTER
                self.cuts += 1
        self._wake()
        return answer

    async def pace(self, platform: str) -> None:
        """The worker's limiter: hold writes beyond ``allowed`` until the next drop is done."""
        await self.until(lambda: self.writes < self.allowed, "the pace to open")

    async def until(self, ready: Callable[[], bool], what: str) -> None:
        if ready():
            return
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((ready, future))
        try:
            async with asyncio.timeout(WAIT):
                await future
        except TimeoutError:
            raise AssertionError(f"waited {WAIT} s for {what}") from None

    def _wake(self) -> None:
        for ready, future in list(self._waiters):
            if not future.done() and ready():
                future.set_result(None)
                self._waiters.remove((ready, future))

    def open_until(self, writes: float) -> None:
        self.allowed = writes
        self._wake()

    async def drop_at(self, at: int, code: int, *, resumable: bool, then: float) -> None:
        """At ``at`` writes: an interaction arrives, the gateway drops and stays down until
        `DURING` more writes went out; then let writes run up to ``then``."""
        fake = self.fake
        await self.until(lambda: self.writes >= at, f"{at} writes")
        just_before = slash("status", guild_id=GUILDS[0])
        await fake.dispatch("INTERACTION_CREATE", just_before)
        fake.gateway_up.clear()  # reconnects wait: the outage lasts until we say
        outage = Outage(code, resumable, self.writes, self.sessions())
        self.current, self.cut_next_post = outage, True
        self.outages.append(outage)
        self.open_until(max(then, self.writes + DURING))
        await fake.drop(code, resumable=resumable)

        await fake.wait_for_call("POST", _callback(just_before))
        outage.answered_while_down = self.sessions() == outage.sessions_at_drop
        queued = slash("help", guild_id=GUILDS[1]) if resumable else None
        if queued is not None:  # Discord keeps it for the session; RESUME replays it
            await fake.dispatch("INTERACTION_CREATE", queued)
        await self.until(lambda: outage.writes_during >= DURING, "writes while the gateway is down")

        gateway = fake.gateway
        identifies, resumes = gateway.identifies + (not resumable), gateway.resumes + resumable
        fake.gateway_up.set()
        await fake.wait_for_gateway(identifies=identifies, resumes=resumes)
        self.current = None
        if queued is not None:
            answer = await fake.wait_for_call("POST", _callback(queued))
            assert answer.json["type"] == 4


def _callback(payload: dict[str, Any]) -> str:
    return rf"/interactions/{payload['id']}/[^/]+/callback"


async def _drain(worker: OutboxWorker, engine: AsyncEngine, clock: FakeClock) -> int:
    """Run the worker, jumping the clock to each next retry, until nothing is pending."""
    sessions = session_factory(engine)
    for rounds in range(1, MAX_ROUNDS + 1):
        await worker.run_once()
        async with sessions() as session:
            waiting = (
                await session.exec(
                    select(DeliveryRow).where(col(DeliveryRow.status).in_(["pending", "sending"]))
                )
            ).all()
        if not waiting:
            return rounds
        clock.now = max(clock.now, min(d.next_attempt_at for d in waiting))
    raise AssertionError(f"the outbox did not drain in {MAX_ROUNDS} rounds")


async def _fan_out_with_drops(
    conductor: Conductor,
    fan_out: asyncio.Task[int],
    *,
    writes: int,
    drops: list[tuple[float, int, bool]],
) -> None:
    """Drops at these shares of the fan-out's ``writes`` (each with its close code and whether
    the session survives it)."""
    cues = [conductor.writes + int(writes * share) for share, _, _ in drops]
    conductor.open_until(cues[0])
    try:
        for (_, code, resumable), at, after in zip(
            drops, cues, [*cues[1:], float("inf")], strict=True
        ):
            await conductor.drop_at(at, code, resumable=resumable, then=after)
    except BaseException:
        fan_out.cancel()
        raise
    await fan_out


async def _check_channels(
    engine: AsyncEngine, fake: FakeDiscord, channels: dict[str, str], *, updated: bool
) -> None:
    """Every channel: one post, recorded; once updated, edited and with one thread reply."""
    async with session_factory(engine)() as session:
        subscriptions = (await session.exec(select(SubscriptionRow))).all()
        deliveries = (await session.exec(select(DeliveryRow))).all()
        messages = {m.subscription_id: m for m in (await session.exec(select(AlertMessageRow)))}
    assert sorted(s.channel_id for s in subscriptions) == sorted(channels)
    assert [d for d in deliveries if d.status != "done"] == []
    for subscription in subscriptions:
        posts = fake.messages.get(subscription.channel_id, [])
        assert len(posts) == 1, f"{subscription.channel_id} got {len(posts)} posts"
        post = posts[0]
        assert messages[subscription.id or 0].message_id == post["id"]
        replies = fake.messages.get(post["id"], [])  # a thread has its starter message's id
        if not updated:
            assert replies == []
            continue
        assert "Found it" in json.dumps(post["embeds"]), f"{post['id']} was not edited"
        assert len(replies) == 1, f"{subscription.channel_id}: {len(replies)} thread replies"
        assert "Found it" in json.dumps(replies[0]["embeds"])


async def test_gateway_drops_mid_fan_out_change_nothing_and_the_bot_comes_back(
    engine: AsyncEngine, clock: FakeClock, tmp_path: Path
) -> None:
    began = time.perf_counter()
    channels = {str(510000000000000000 + i): GUILDS[i % len(GUILDS)] for i in range(CHANNELS)}
    await subscribe_channels(engine, clock, [(Scope("discord", g), c) for c, g in channels.items()])
    sessions = session_factory(engine)
    deps = AppDeps(catalog=SVC_CATALOG, sessions=sessions, registry=load_cogs(CommandRegistry()))

    async def fake_sleep(seconds: float) -> None:  # the global limiter waits on our clock
        clock.advance(seconds=seconds)

    def monotonic() -> float:
        return clock.now.timestamp()

    async def at_once(shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s (wall clock) before a new IDENTIFY; the outage here is ours."""

    async with FakeDiscord(guild_ids=GUILDS) as fake, aiohttp.ClientSession() as http:
        for channel_id, guild_id in channels.items():
            fake.add_channel(guild_id, channel_id)
        fake.honour_nonces = False  # only the worker's own check may stop a duplicate
        conductor = Conductor(fake)
        fake.inject = conductor.inject
        sender = DiscordSender(
            token="fake-token",
            api_base=fake.api_base,
            session=http,
            clock=clock,
            limiter=GlobalRateLimiter(monotonic=monotonic, sleep=fake_sleep),
            monotonic=monotonic,
        )
        worker = OutboxWorker(
            sessions=sessions,
            senders={"discord": sender},
            catalog=SVC_CATALOG,
            clock=clock,
            limiter=conductor.pace,
        )
        adapter = WatchedDiscordAdapter(
            config=config_for(fake, tmp_path / "commands.sha256"), deps=deps, clock=clock
        )
        await adapter.start()
        try:
            adapter.client.before_identify_hook = at_once  # type: ignore[method-assign]
            await fake.wait_for_gateway()
            await adapter.wait_until_ready()

            opened = outage_event(
                EventKind.INCIDENT_OPENED, "opened", "investigating", "Looking", clock
            )
            await record_event(engine, clock, opened)
            first = asyncio.create_task(_drain(worker, engine, clock))
            await _fan_out_with_drops(
                conductor,
                first,
                writes=CHANNELS,
                drops=[(0.2, 4000, True), (0.4, 4009, False), (0.6, 4000, True)],
            )
            rounds = first.result()
            await _check_channels(engine, fake, channels, updated=False)

            clock.advance(minutes=5)
            update = outage_event(EventKind.INCIDENT_UPDATED, "u1", "identified", "Found it", clock)
            await record_event(engine, clock, update)
            second = asyncio.create_task(_drain(worker, engine, clock))
            # Per channel: the edit, the thread's start and the reply in it.
            await _fan_out_with_drops(
                conductor, second, writes=3 * CHANNELS, drops=[(0.5, 4000, True)]
            )
            rounds += second.result()
            await _check_channels(engine, fake, channels, updated=True)

            after = await _interact(fake, slash("status", guild_id=GUILDS[2]))
            assert embed_of(after)["title"] == "Service status"
        finally:
            fake.gateway_up.set()  # a reconnect held by a failed step would delay the stop
            await adapter.stop()

    gateway = fake.gateway
    drops = conductor.outages
    assert (gateway.identifies, gateway.resumes, gateway.invalidations) == (2, 3, 1)
    assert conductor.cuts == len(drops) == 4
    for outage in drops:
        assert 0 < outage.writes_at_drop < conductor.writes, outage  # really mid-way
        assert outage.writes_during >= DURING, outage
        assert outage.answered_while_down, outage
    print(
        f"\ngateway chaos: {CHANNELS} channels in {len(GUILDS)} guilds, {conductor.writes} writes "
        f"in {rounds} worker rounds; drops (code, writes at drop, writes while down): "
        f"{[(o.code, o.writes_at_drop, o.writes_during) for o in drops]}; identifies "
        f"{gateway.identifies}, resumes {gateway.resumes}, refused resumes "
        f"{gateway.invalidations}; {conductor.cuts} REST answers lost, 0 duplicates; "
        f"{time.perf_counter() - began:.1f} s"
    )


async def _interact(fake: FakeDiscord, payload: dict[str, Any]) -> dict[str, Any]:
    await fake.dispatch("INTERACTION_CREATE", payload)
    call = await fake.wait_for_call("POST", _callback(payload))
    body: dict[str, Any] = call.json
    return body
