"""Shared benchmark helpers: machine info, result files, fixtures and a fake-page farm.

The farm runs FakeStatusServers in a child process, so the benchmark's own process (the one whose
CPU time is measured) never spends a cycle serving pages. Run the scripts from the repo root.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import cProfile
import gc
import json
import multiprocessing
import os
import platform
import pstats
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from aiohttp import web  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from bot.core.timeutil import system_clock  # noqa: E402
from bot.runtime.poll_schedule import PollSchedule  # noqa: E402
from bot.sources.catalog import Catalog, parse_catalog  # noqa: E402
from bot.sources.poller import StatusPoller  # noqa: E402
from tests.fakes.status_server import FakeStatusServer, Step  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "statuspage"
RESULTS = REPO / "bench" / "results"
BASE_FIXTURES = (
    "statuspage_summary_github_2022-11-25_incident.json",
    "statuspage_summary_iterable_2017-08-22.json",
    "statuspage_summary_twilio_2020-06-16_incidents_and_maintenances.json",
)
ENDPOINTS = ("summary.json", "components.json", "incidents.json")


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(
    name: str, figures: Mapping[str, Any], targets: Mapping[str, Any], passed: bool
) -> Path:
    """Write bench/results/<name>.json in the shape DESIGN.md fixes."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    document = {
        "name": name,
        "figures": dict(figures),
        "targets": dict(targets),
        "pass": passed,
        "machine": machine(),
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


@contextlib.contextmanager
def databases() -> Iterator[dict[str, str]]:
    """Database URLs to run on: SQLite in a temp dir, and a fresh PostgreSQL database when
    TEST_DATABASE_URL is set (dropped afterwards). Enter it outside any running event loop."""
    from sqlalchemy.engine import make_url

    with tempfile.TemporaryDirectory(prefix="outagebot-bench-") as tmp:
        urls = {"sqlite": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"}
        base = os.environ.get("TEST_DATABASE_URL")
        if not base:
            yield urls
            return
        url = make_url(base)
        admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"outagebot_bench_{secrets.token_hex(4)}"
        asyncio.run(_admin_sql(admin, f'CREATE DATABASE "{name}"'))
        try:
            yield urls | {"postgres": url.set(database=name).render_as_string(hide_password=False)}
        finally:
            asyncio.run(_admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin_sql(dsn: str, sql: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def fixture(name: str) -> dict[str, Any]:
    """A recorded Statuspage payload, decoded (a fresh copy each call)."""
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def page_base(index: int) -> str:
    """The path prefix of fake page `index`; its endpoints live under it."""
    return f"/p{index:03d}/api/v2/"


def page_files(summary: Mapping[str, Any]) -> dict[str, bytes]:
    """summary.json, components.json and incidents.json of one page, derived from a summary."""
    page = summary.get("page", {})
    return {
        "summary.json": json.dumps(summary).encode(),
        "components.json": json.dumps(
            {"page": page, "components": summary.get("components", [])}
        ).encode(),
        "incidents.json": json.dumps(
            {"page": page, "incidents": summary.get("incidents", [])}
        ).encode(),
    }


def varied_page(index: int) -> dict[str, bytes]:
    """Page `index`: a recorded GitHub, Iterable or Twilio summary renamed, so each ETag differs."""
    summary = copy.deepcopy(fixture(BASE_FIXTURES[index % len(BASE_FIXTURES)]))
    summary["page"]["id"] = f"bench{index:05d}"
    summary["page"]["name"] = f"{summary['page']['name']} #{index}"
    return page_files(summary)


def farm_layout(pages: Sequence[Mapping[str, bytes]], servers: int) -> list[dict[str, bytes]]:
    """Spread pages (endpoint -> body) over `servers` servers, page i on server i % servers."""
    layout: list[dict[str, bytes]] = [{} for _ in range(servers)]
    for index, files in enumerate(pages):
        for endpoint, body in files.items():
            layout[index % servers][page_base(index) + endpoint] = body
    return layout


def statuspage_catalog(urls: Sequence[str]) -> Catalog:
    """A catalog of one service per URL (ids s0, s1, …), each with one statuspage source."""
    services = [
        {"id": f"s{i}", "name": f"S{i}", "source": [{"kind": "statuspage", "url": url}]}
        for i, url in enumerate(urls)
    ]
    return parse_catalog({"service": services}, origin="bench")


class _CountingServer(FakeStatusServer):
    """A FakeStatusServer that counts answers by (endpoint, status) and keeps no request log."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: collections.Counter[str] = collections.Counter()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await super()._handle(request)
        self.requests.clear()
        self.answers[f"{request.path.rsplit('/', 1)[-1]} {response.status}"] += 1
        return response


async def _serve(conn: Connection, layout: Sequence[Mapping[str, bytes]]) -> None:
    servers = [_CountingServer() for _ in layout]
    for server in servers:
        await server.__aenter__()
    for server, paths in zip(servers, layout, strict=True):
        for path, body in paths.items():
            server.set_script(path, [Step.json(body)])
    conn.send([server.port for server in servers])
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(conn.fileno(), ready.set)
    try:
        while True:
            await ready.wait()
            ready.clear()
            while conn.poll():
                command, argument = conn.recv()
                if command == "stop":
                    return
                if command == "set":  # {server index: {path: body}}, applied atomically
                    for index, paths in argument.items():
                        for path, body in paths.items():
                            servers[index].set_script(path, [Step.json(body)])
                    conn.send(time.monotonic())
                elif command == "stats":
                    total: collections.Counter[str] = collections.Counter()
                    for server in servers:
                        total.update(server.answers)
                        server.answers.clear()
                    conn.send(dict(total))
    finally:
        loop.remove_reader(conn.fileno())
        for server in servers:
            await server.__aexit__(None, None, None)


Layout = Sequence[Mapping[str, bytes]]


def _farm_main(conn: Connection, layout: Layout | Callable[[], Layout]) -> None:
    asyncio.run(_serve(conn, layout() if callable(layout) else layout))


class Farm:
    """Fake status pages served from a child process; one server (port) per layout entry.

    Start it before the benchmark's event loop (the child is forked). Every path answers with
    a strong ETag and Last-Modified and honours revalidation with 304; other paths are 404.
    `layout` may be a function the child calls to build it, so that thousands of pages' bodies
    never sit in the benchmark's own memory.
    """

    def __init__(self, layout: Layout | Callable[[], Layout]) -> None:
        self._conn, child = multiprocessing.get_context("fork").Pipe()
        self._process = multiprocessing.get_context("fork").Process(
            target=_farm_main, args=(child, layout), daemon=True
        )
        self._process.start()
        child.close()
        if not self._conn.poll(120):
            self.close()
            raise RuntimeError("the fake-page farm did not start within 120 s")
        self.ports: list[int] = self._conn.recv()

    def summary_url(self, page: int) -> str:
        """The summary.json URL of page `page` of a farm_layout."""
        port = self.ports[page % len(self.ports)]
        return f"http://127.0.0.1:{port}{page_base(page)}summary.json"

    def set_page(self, page: int, files: Mapping[str, bytes]) -> float:
        """Serve new endpoint bodies for page `page` (as farm_layout placed it), all at once;
        returns the child's time.monotonic() once they are in place (system-wide on Linux)."""
        paths = {page_base(page) + endpoint: body for endpoint, body in files.items()}
        self._conn.send(("set", {page % len(self.ports): paths}))
        moment: float = self._conn.recv()
        return moment

    def stats(self) -> dict[str, int]:
        """Answers since the last call, keyed '<endpoint> <status>' (e.g. 'summary.json 304')."""
        self._conn.send(("stats", None))
        answers: dict[str, int] = self._conn.recv()
        return answers

    def close(self) -> None:
        """Stop the child; terminate it if it does not stop within 10 s."""
        if self._process.is_alive():
            with contextlib.suppress(OSError):
                self._conn.send(("stop", None))
            self._process.join(10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
        self._conn.close()

    def __enter__(self) -> Farm:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class Profile:
    stats: pstats.Stats  # event-loop thread CPU
    loop_share: float  # of the process's CPU
    sql: dict[str, float]  # statement (its start) -> times per poll; "(commit)" for commits

    @property
    def statements(self) -> float:
        return sum(n for statement, n in self.sql.items() if statement != "(commit)")


async def profile_work(
    engine: AsyncEngine, work: Callable[[], Awaitable[object]], polls: int
) -> Profile:
    """Run `work` under cProfile (this thread's CPU), counting SQL statements and commits."""
    sql: collections.Counter[str] = collections.Counter()

    def on_statement(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        sql[" ".join(statement.split())[:72]] += 1

    def on_commit(_conn: object) -> None:
        sql["(commit)"] += 1

    listeners = (("before_cursor_execute", on_statement), ("commit", on_commit))
    for name, listener in listeners:
        event.listen(engine.sync_engine, name, listener)
    profiler = cProfile.Profile(time.thread_time)
    gc.collect()
    thread, process = time.thread_time(), time.process_time()
    profiler.enable()
    await work()
    profiler.disable()
    share = (time.thread_time() - thread) / (time.process_time() - process)
    for name, listener in listeners:
        event.remove(engine.sync_engine, name, listener)
    per_poll = {statement: n / polls for statement, n in sql.most_common()}
    return Profile(pstats.Stats(profiler), share, per_poll)


def cpu_by_package(stats: pstats.Stats) -> dict[str, float]:
    """Own time per package (site-packages), per bot module, per stdlib module, or builtins."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        path = filename.replace("\\", "/")
        if "/site-packages/" in path:
            package = path.split("/site-packages/", 1)[1].split("/", 1)[0]
        elif "/bot/" in path:
            package = "bot/" + path.split("/bot/", 1)[1]
        elif path.startswith("~") or not path.endswith(".py"):
            package = "(builtins: C functions)"
        else:
            package = "stdlib " + path.rsplit("/", 1)[-1]
        totals[package] = totals.get(package, 0.0) + row[2]
    return totals


def print_profile(title: str, profile: Profile) -> None:
    """Top 15 by cumulative time, own time summed per package (coroutine resumes inflate cumtime
    under asyncio; the per-package split of tottime is not inflated), then the SQL per poll."""
    stats = profile.stats
    print(f"\n{title}, event-loop thread CPU: top 15 by cumulative time")
    stats.sort_stats("cumulative").print_stats(15)
    by_package = cpu_by_package(stats)
    total = sum(by_package.values())
    print(f"{title}: own time (tottime) by package, profiled total {total:.3f} s")
    for package, seconds in sorted(by_package.items(), key=lambda kv: -kv[1])[:12]:
        print(f"  {package:<42}{seconds:>8.3f} s{seconds / total:>7.1%}")
    print(f"{title}: SQL per poll")
    for statement, n in profile.sql.items():
        print(f"  {n:>5.2f}  {statement}")


@contextlib.asynccontextmanager
async def polled_on_schedule(poller: StatusPoller, interval: float) -> AsyncIterator[None]:
    """The poller driven as the app drives it outside console mode (`PollSchedule` on the real
    clock, every page read at once at start, spread over at most the interval); stopped as the
    app stops: no new polls, those in flight finish."""
    polls = PollSchedule(
        poller.poll,
        poller.urls,
        interval_seconds=interval,
        clock=system_clock,
        first_run=system_clock(),
        spread_seconds=min(5.0, interval),
    )
    running = asyncio.create_task(polls.run())
    try:
        yield
    finally:
        polls.close()
        await running
        await poller.drain(grace_seconds=5)
