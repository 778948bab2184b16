"""Synthetic HTTP probes: the pure verdict, the spec from catalog options, and a real session."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType

from bot.sources.catalog import load_catalog
from bot.sources.fetch import new_http_session
from bot.sources.probe import (
    MAX_BODY_BYTES,
    HttpProber,
    ProbeResult,
    ProbeSpec,
    ProbeVerdict,
    judge,
)
from tests.fakes.status_server import FakeStatusServer, Step

USER_AGENT = "outagebot-tests/1.0 (+https://example.invalid/bot)"
# Longer than any loopback request takes, so a test expecting another error never sees a timeout.
GENEROUS_TIMEOUT = 10.0
API_401 = ProbeSpec(url="https://api.example.invalid/v1/models", expect_status=(401,))


class SteppingClock:
    """A monotonic clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float, start: float = 1000.0) -> None:
        self._times: Iterator[float] = (start + step * n for n in range(1_000_000))

    def __call__(self) -> float:
        return next(self._times)


@pytest.fixture
async def server() -> AsyncIterator[FakeStatusServer]:
    async with FakeStatusServer() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_http_session(user_agent=USER_AGENT) as http:
        yield http


@pytest.fixture
def prober(session: aiohttp.ClientSession) -> HttpProber:
    return HttpProber(session)


def _spec(server: FakeStatusServer, path: str, **fields: Any) -> ProbeSpec:
    spec = ProbeSpec(url=server.url(path), expect_status=(401,), timeout_s=GENEROUS_TIMEOUT)
    return replace(spec, **fields)


# --- judge: pure verdicts ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("http_status", "latency_ms", "observed_error", "verdict", "error"),
    [
        (401, 120.0, None, ProbeVerdict.OK, None),
        (401, 3000.0, None, ProbeVerdict.OK, None),
        (401, 4500.0, None, ProbeVerdict.SLOW, "took 4500 ms, budget 3000 ms"),
        (500, 80.0, None, ProbeVerdict.FAILED, "HTTP 500"),
        (404, 80.0, None, ProbeVerdict.FAILED, "HTTP 404, expected 401"),
        (200, 80.0, None, ProbeVerdict.FAILED, "HTTP 200, expected 401"),
        (None, 10_000.0, "timed out after 10 s", ProbeVerdict.FAILED, "timed out after 10 s"),
        (401, 50.0, "response body truncated", ProbeVerdict.FAILED, "response body truncated"),
        (None, 0.0, None, ProbeVerdict.FAILED, "no response"),
    ],
    ids=[
        "expected-401",
        "at-budget",
        "slow",
        "500",
        "404-not-401",
        "200-not-401",
        "timeout",
        "error-after-headers",
        "nothing",
    ],
)
def test_judge(
    http_status: int | None,
    latency_ms: float,
    observed_error: str | None,
    verdict: ProbeVerdict,
    error: str | None,
) -> None:
    result = judge(API_401, http_status=http_status, latency_ms=latency_ms, error=observed_error)

    assert result == ProbeResult(verdict, http_status, latency_ms, error)


def test_judge_a_5xx_is_a_failure_even_when_slow() -> None:
    result = judge(API_401, http_status=503, latency_ms=9000.0, error=None)

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "HTTP 503"


def test_judge_names_every_expected_status() -> None:
    spec = replace(API_401, expect_status=(200, 401))

    assert judge(spec, http_status=200, latency_ms=1.0, error=None).verdict is ProbeVerdict.OK
    result = judge(spec, http_status=403, latency_ms=1.0, error=None)
    assert result.error == "HTTP 403, expected 200 or 401"


# --- ProbeSpec.from_options --------------------------------------------------------------------


def test_from_options_reads_a_catalog_table() -> None:
    spec = ProbeSpec.from_options(
        "https://api.openai.com/v1/models",
        {"method": "get", "expect_status": [401], "latency_budget_ms": 2500},
    )

    assert spec == ProbeSpec(
        url="https://api.openai.com/v1/models",
        method="GET",
        expect_status=(401,),
        latency_budget_ms=2500,
        timeout_s=10.0,
    )
    assert ProbeSpec.from_options("http://x.example/", {}) == ProbeSpec(url="http://x.example/")


def test_every_probe_in_the_built_in_catalog_is_valid() -> None:
    probes = [s for service in load_catalog() for s in service.sources if s.kind == "probe"]

    assert probes
    for source in probes:
        spec = ProbeSpec.from_options(source.url, source.options)
        assert spec.method in {"GET", "HEAD"}


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("ftp://api.example/", {}, "absolute http"),
        ("/v1/models", {}, "absolute http"),
        ("https://user:pw@api.example/", {}, "credentials"),
        ("https://api.example/", {"method": "POST"}, "GET or HEAD"),
        ("https://api.example/", {"method": 1}, "GET or HEAD"),
        ("https://api.example/", {"expect_status": 401}, "list of HTTP statuses"),
        ("https://api.example/", {"expect_status": ["401"]}, "list of HTTP statuses"),
        ("https://api.example/", {"expect_status": [True]}, "list of HTTP statuses"),
        ("https://api.example/", {"expect_status": []}, "at least one"),
        ("https://api.example/", {"expect_status": [503]}, "100-499"),
        ("https://api.example/", {"expect_status": [99]}, "100-499"),
        ("https://api.example/", {"latency_budget_ms": 0}, "positive integer"),
        ("https://api.example/", {"latency_budget_ms": "3000"}, "positive integer"),
        ("https://api.example/", {"latency_budget_ms": 2.5}, "positive integer"),
        ("https://api.example/", {"latency_budget_ms": False}, "positive integer"),
        ("https://api.example/", {"timeout_s": 0}, "positive number"),
        ("https://api.example/", {"timeout_s": float("nan")}, "positive number"),
        ("https://api.example/", {"timeout_s": "10"}, "positive number"),
        ("https://api.example/", {"expected_status": [401]}, "unknown probe option"),
    ],
)
def test_from_options_rejects_bad_values_clearly(
    url: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ProbeSpec.from_options(url, options)


# --- HttpProber against a fake server, through a real session ----------------------------------


async def test_expected_401_is_ok_and_no_credentials_are_sent(
    server: FakeStatusServer, prober: HttpProber
) -> None:
    server.set_script("/v1/models", [Step(status=401, body=b'{"error": "no key"}')])

    result = await prober.probe(_spec(server, "/v1/models"))

    assert result.verdict is ProbeVerdict.OK
    assert result.http_status == 401
    assert result.error is None
    assert 0 <= result.latency_ms < GENEROUS_TIMEOUT * 1000
    (request,) = server.requests
    assert request.method == "GET"
    assert "Authorization" not in request.headers
    assert "Proxy-Authorization" not in request.headers
    assert "Cookie" not in request.headers
    assert request.headers["User-Agent"] == USER_AGENT


async def test_head_probe(server: FakeStatusServer, prober: HttpProber) -> None:
    server.set_script("/v1/models", [Step(status=401)])

    result = await prober.probe(_spec(server, "/v1/models", method="HEAD"))

    assert result.verdict is ProbeVerdict.OK
    assert server.requests[0].method == "HEAD"


async def test_server_error_fails(server: FakeStatusServer, prober: HttpProber) -> None:
    server.set_script("/v1/models", [Step(status=503)])

    result = await prober.probe(_spec(server, "/v1/models"))

    assert result == ProbeResult(ProbeVerdict.FAILED, 503, result.latency_ms, "HTTP 503")


async def test_slow_answer_is_slow_with_an_injected_clock(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    server.set_script("/v1/models", [Step(status=401)])
    prober = HttpProber(session, clock=SteppingClock(step=4.5))

    result = await prober.probe(_spec(server, "/v1/models", latency_budget_ms=3000))

    assert result == ProbeResult(ProbeVerdict.SLOW, 401, 4500.0, "took 4500 ms, budget 3000 ms")


async def test_hanging_server_times_out(server: FakeStatusServer, prober: HttpProber) -> None:
    server.set_script("/hang", [Step(hang=True)])

    result = await prober.probe(_spec(server, "/hang", timeout_s=0.2))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "timed out after 0.2 s"
    assert result.http_status is None
    assert 200 <= result.latency_ms < GENEROUS_TIMEOUT * 1000


async def test_body_that_stalls_times_out_keeping_the_status(
    server: FakeStatusServer, prober: HttpProber
) -> None:
    server.set_script("/v1/models", [Step(status=401, body=b"x" * 100, cut_at=5, after_cut="hang")])

    result = await prober.probe(_spec(server, "/v1/models", timeout_s=0.2))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "timed out after 0.2 s"
    assert result.http_status == 401


async def test_connection_reset_fails(server: FakeStatusServer, prober: HttpProber) -> None:
    server.set_script("/reset", [Step(reset=True)])

    result = await prober.probe(_spec(server, "/reset"))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error in {"connection reset", "server closed the connection"}
    assert result.http_status is None


async def test_nothing_listening_fails_as_connection_refused(prober: HttpProber) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    result = await prober.probe(ProbeSpec(url=f"http://127.0.0.1:{port}/v1/models"))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "connection refused"


async def test_three_redirects_are_followed(server: FakeStatusServer, prober: HttpProber) -> None:
    for hop in range(3):
        server.set_script(f"/r{hop}", [Step.redirect(f"/r{hop + 1}")])
    server.set_script("/r3", [Step(status=401)])

    result = await prober.probe(_spec(server, "/r0"))

    assert result.verdict is ProbeVerdict.OK
    assert [r.path for r in server.requests] == ["/r0", "/r1", "/r2", "/r3"]


async def test_a_fourth_redirect_fails_without_leaking_the_query(
    server: FakeStatusServer, prober: HttpProber
) -> None:
    server.set_script("/loop", [Step.redirect("/loop?key=s3cret")])

    result = await prober.probe(_spec(server, "/loop?key=s3cret"))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "more than 3 redirects"
    assert server.count("/loop") == 4


async def test_redirect_carrying_credentials_is_not_followed(
    server: FakeStatusServer, prober: HttpProber
) -> None:
    server.set_script("/old", [Step.redirect(server.url("/new").replace("//", "//u:p@", 1))])
    server.set_script("/new", [Step(status=401)])

    result = await prober.probe(_spec(server, "/old"))

    assert result.verdict is ProbeVerdict.FAILED
    assert result.error == "redirect carries credentials"
    assert server.count("/new") == 0


async def test_expected_redirect_status_is_seen_not_followed(
    server: FakeStatusServer, prober: HttpProber
) -> None:
    server.set_script("/old", [Step.redirect("/new", status=301)])

    result = await prober.probe(_spec(server, "/old", expect_status=(301,)))

    assert result.verdict is ProbeVerdict.OK
    assert server.count("/new") == 0


def _small_receive_buffer(addr_info: AddrInfoType) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    # Caps kernel buffering so what the server sent is close to what the client read.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    return sock


async def test_huge_body_is_read_only_up_to_the_cap(server: FakeStatusServer) -> None:
    server.set_script("/big", [Step(status=200, huge_bytes=50_000_000)])
    connector = aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        result = await HttpProber(session).probe(
            _spec(server, "/big", expect_status=(200,), latency_budget_ms=60_000)
        )

    assert result.verdict is ProbeVerdict.OK
    # The cap plus socket buffers and aiohttp's read-ahead: far below the 50 MB on offer.
    assert MAX_BODY_BYTES <= server.bytes_sent["/big"] < 2_000_000


async def test_sessions_carrying_credentials_are_refused() -> None:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer sk-secret"}) as session:
        with pytest.raises(ValueError, match="credentials"):
            HttpProber(session)
    async with aiohttp.ClientSession(trust_env=True) as session:
        with pytest.raises(ValueError, match="environment"):
            HttpProber(session)


async def test_cancellation_propagates(server: FakeStatusServer, prober: HttpProber) -> None:
    server.set_script("/hang", [Step(hang=True)])
    task = asyncio.create_task(prober.probe(_spec(server, "/hang")))
    await server.wait_for("/hang")

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
