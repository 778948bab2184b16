"""The bot, stepping through a scripted outage one virtual minute at a time, to be killed.

Usage: python -m tests.fakes.kill_child, then one WORKDIR per line on stdin: each line forks a
fresh bot process for that directory (the imports, seconds on a busy machine, are paid once
instead of at every restart; a fork is a process like any other to kill -9). The bot prints ``pid
N`` first, the forking process ``exit CODE`` when it ended.

``WORKDIR/plan.json`` says what to do (written by tests/test_chaos_kill.py); the bot is the real
object graph of `outagebot run` (`open_app`: migrations, catalog, poller with detection and the
alert recorder, the cogs), the real Discord and Slack senders and outbox worker, the real crowd
watch. Every round is one virtual minute: poll every status page, take that minute's `/report`s,
let the crowd watch look, drain the outbox. ``WORKDIR/cursor.json`` holds the next step and is
replaced atomically after each one, so a process killed anywhere redoes at most the step it was in.

Before each step a marker line goes to stdout (``poll 3``, ``detect 3``, ``report 3 2``, ``crowd
3``, ``fanout 3``, finally ``done``): the test picks its moment to kill from them.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

import bot.app
from bot.adapters.discord.sender import DiscordSender
from bot.adapters.slack import web_client
from bot.adapters.slack.sender import SlackSender
from bot.core.commands import Actor, Invocation, dispatch
from bot.core.events import DetectionEvent
from bot.delivery.claim import OutboxLink
from bot.delivery.worker import OutboxWorker
from bot.services.crowd_watch import CrowdWatch
from bot.services.deps import AppDeps
from bot.settings import Settings
from bot.store.crowd_models import ReportRow
from bot.store.engine import is_sqlite
from bot.store.models import DeliveryRow
from bot.store.pg_connection import asyncpg_connector
from bot.store.user_hash import user_hash

REPORT_SPACING = timedelta(seconds=4)
CROWD_AT = timedelta(seconds=50)
FANOUT_AT = timedelta(seconds=55)
MAX_DRAIN_ROUNDS = 200


@dataclass(frozen=True, slots=True)
class PlannedReport:
    round: int
    platform: str
    community: str
    user: str
    service: str


class StepClock:
    """Virtual time that depends only on the step being done, so a redone step sees the same."""

    def __init__(self, rounds: list[datetime]) -> None:
        self.rounds = rounds
        self.now = rounds[0]

    def __call__(self) -> datetime:
        return self.now

    def at(self, round_: int, offset: timedelta = timedelta(0)) -> None:
        self.now = self.rounds[round_] + offset


def mark(*words: object) -> None:
    sys.stdout.write(" ".join(map(str, words)) + "\n")
    sys.stdout.flush()


class Cursor:
    """The next (round, step), kept in a file replaced atomically."""

    def __init__(self, path: Path) -> None:
        self._path = path
        state = json.loads(path.read_text()) if path.exists() else {"round": 0, "step": 0}
        self.round, self.step = int(state["round"]), int(state["step"])

    def advance(self, *, round_: int, step: int) -> None:
        scratch = self._path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"round": round_, "step": step}))
        os.replace(scratch, self._path)
        self.round, self.step = round_, step


async def main(workdir: Path) -> None:
    plan: dict[str, Any] = json.loads((workdir / "plan.json").read_text())
    reports = [PlannedReport(*r) for r in plan["reports"]]
    clock = StepClock([datetime.fromisoformat(t) for t in plan["rounds"]])
    cursor = Cursor(workdir / "cursor.json")
    rounds = len(clock.rounds)
    settings = Settings(
        _env_file=None,
        database_url=plan["database_url"],
        catalog_path=Path(plan["catalog_path"]),
        discord_token=plan["discord_token"],
        discord_api_base=plan["discord_api"],
        slack_bot_token=plan["slack_token"],
        slack_api_url=plan["slack_api"],
    )
    round_now = cursor.round

    async def traced(
        session: AsyncSession, events: Sequence[DetectionEvent], now: datetime
    ) -> None:
        mark("detect", round_now)
        await recorder(session, events, now)

    # Patched before `open_app` builds the poller with it: the only way to mark the moment
    # detection writes its events, inside the poll's transaction.
    recorder = bot.app._record_alert_events
    bot.app._record_alert_events = traced
    async with bot.app.open_app(settings, clock=clock) as app, aiohttp.ClientSession() as scenario:
        sessions = app.deps.sessions
        worker = OutboxWorker(
            sessions=sessions,
            senders={
                "discord": DiscordSender(
                    token=plan["discord_token"],
                    api_base=plan["discord_api"],
                    session=app.chat_http,
                    clock=clock,
                ),
                "slack": SlackSender(
                    web_client(settings, retry_connection_errors=False), clock=clock
                ),
            },
            catalog=app.deps.catalog,
            clock=clock,
            link=None
            if is_sqlite(settings.database_url)
            else OutboxLink(asyncpg_connector(settings.database_url)),
        )
        await worker.recover()
        watch = CrowdWatch(sessions=sessions, catalog=app.deps.catalog, clock=clock)
        salt = bytes.fromhex(plan["salt"])
        while cursor.round < rounds:
            round_now = r = cursor.round
            todo = [p for p in reports if p.round == r]
            last = len(todo) + 2
            for step in range(cursor.step, last + 1):
                if step == 0:
                    clock.at(r)
                    mark("poll", r)
                    async with scenario.put(plan["scenario_clock"], data=clock().isoformat()):
                        pass
                    await app.poller.poll_all()
                elif step <= len(todo):
                    clock.at(r, REPORT_SPACING * step)
                    mark("report", r, step)
                    await _report(app.deps, clock, todo[step - 1], salt)
                elif step == last - 1:
                    clock.at(r, CROWD_AT)
                    mark("crowd", r)
                    await watch.tick()
                else:
                    clock.at(r, FANOUT_AT)
                    mark("fanout", r)
                    await _drain(worker, sessions)
                if step < last:
                    cursor.advance(round_=r, step=step + 1)
            cursor.advance(round_=r + 1, step=0)
        mark("done")


async def _report(deps: AppDeps, clock: StepClock, planned: PlannedReport, salt: bytes) -> None:
    """One `/report`, unless the killed process stored it already.

    A platform does not deliver an interaction again once the bot took it; the person would
    see no answer, but what the bot stored stays stored. Pressing again is a repeat, which the
    report tests cover; here it would change the input, not test the crash."""
    reporter = user_hash(planned.platform, planned.user, salt=salt)
    async with deps.sessions() as session:
        stored = (
            await session.exec(
                select(func.count())
                .select_from(ReportRow)
                .where(ReportRow.reporter_hash == reporter, ReportRow.at == clock())
            )
        ).one()
    if stored:
        mark("report-already-stored")
        return
    invocation = Invocation(
        command="report",
        options={"service": planned.service, "what": "errors"},
        community_id=planned.community,
        channel_id="general",
        actor=Actor(platform=planned.platform, user_id=planned.user, is_admin=False),
    )
    reply = await dispatch(deps.registry, invocation, deps, clock())
    if reply.title not in ("Thanks, report received", "Already counted"):
        raise RuntimeError(f"/report answered {reply.title!r}")


async def _drain(worker: OutboxWorker, sessions: async_sessionmaker[AsyncSession]) -> None:
    for _ in range(MAX_DRAIN_ROUNDS):
        await worker.run_once()
        async with sessions() as session:
            waiting = (
                await session.exec(
                    select(func.count())
                    .select_from(DeliveryRow)
                    .where(col(DeliveryRow.status).in_(["pending", "sending"]))
                )
            ).one()
        if not waiting:
            return
        await asyncio.sleep(0)
    raise RuntimeError("the outbox did not drain: a delivery is waiting for a retry")


def serve_forks() -> None:
    """Fork one bot per work directory read from stdin; no event loop or connection exists here
    yet, so each fork starts as clean as a new process."""
    for line in sys.stdin:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                mark("pid", os.getpid())
                asyncio.run(main(Path(line.strip())))
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        mark("exit", os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    serve_forks()
