"""HttpFetcher against a fake status page on loopback, through a real aiohttp session."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohappyeyeballs import AddrInfoType

from bot.sources.fetch import FetchOutcome, HttpFetcher, new_http_session
from tests.fakes.status_server import FakeStatusServer, Step

USER_AGENT = "outagebot-tests/1.0 (+https://example.invalid/bot)"
PAYLOAD = {"page": {"id": "abc", "name": "Example"}, "status": {"indicator": "none"}}
HUGE = 50_000_000
# Longer than any loopback request takes, so a test expecting another error never sees a timeout.
GENEROUS_TIMEOUT = 10.0


@pytest.fixture
async def server() -> AsyncIterator[FakeStatusServer]:
    async with FakeStatusServer() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with new_http_session(user_agent=USER_AGENT) as http:
        yield http


@pytest.fixture
def fetcher(session: aiohttp.ClientSession) -> HttpFetcher:
    return HttpFetcher(session, timeout=GENEROUS_TIMEOUT)


async def test_ok_returns_body_validators_and_identifies_itself(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_json("/api/v2/summary.json", PAYLOAD)

    result = await fetcher.get(server.url("/api/v2/summary.json"))

    assert result.outcome is FetchOutcome.OK
    assert result.body is not None
    assert json.loads(result.body) == PAYLOAD
    assert result.etag is not None
    assert result.etag.startswith('"')
    assert result.last_modified is not None
    assert result.http_status == 200
    assert result.error is None
    assert 0 <= result.elapsed < GENEROUS_TIMEOUT
    (request,) = server.requests
    assert request.method == "GET"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Accept"] == "application/json"
    assert "If-None-Match" not in request.headers


async def test_etag_revalidation_returns_not_modified(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_json("/s.json", PAYLOAD)
    first = await fetcher.get(server.url("/s.json"))

    second = await fetcher.get(server.url("/s.json"), etag=first.etag)

    assert second.outcome is FetchOutcome.NOT_MODIFIED
    assert second.body is None
    assert second.http_status == 304
    assert second.etag == first.etag
    assert second.error is None
    assert server.requests[1].headers["If-None-Match"] == first.etag


async def test_last_modified_revalidation_returns_not_modified(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_json("/s.json", PAYLOAD)
    first = await fetcher.get(server.url("/s.json"))
    assert first.last_modified is not None

    second = await fetcher.get(server.url("/s.json"), last_modified=first.last_modified)

    assert second.outcome is FetchOutcome.NOT_MODIFIED
    assert second.last_modified == first.last_modified
    headers = server.requests[1].headers
    assert headers["If-Modified-Since"] == first.last_modified
    assert "If-None-Match" not in headers


async def test_changed_payload_is_fetched_with_new_etag(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_json("/s.json", PAYLOAD)
    first = await fetcher.get(server.url("/s.json"))
    server.set_json("/s.json", {**PAYLOAD, "status": {"indicator": "major"}})

    second = await fetcher.get(server.url("/s.json"), etag=first.etag)

    assert second.outcome is FetchOutcome.OK
    assert second.body is not None
    assert json.loads(second.body)["status"]["indicator"] == "major"
    assert second.etag not in (None, first.etag)


async def test_not_modified_without_validators_keeps_the_previous_ones(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_script("/s.json", [Step(status=304)])

    result = await fetcher.get(
        server.url("/s.json"), etag='"v1"', last_modified="Tue, 03 Jun 2025 10:00:00 GMT"
    )

    assert result.outcome is FetchOutcome.NOT_MODIFIED
    assert result.etag == '"v1"'
    assert result.last_modified == "Tue, 03 Jun 2025 10:00:00 GMT"


async def test_server_error_is_an_error_result_keeping_validators(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_body("/s.json", b"oops", status=500, content_type="text/plain")

    result = await fetcher.get(server.url("/s.json"), etag='"v1"')

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "HTTP 500"
    assert result.http_status == 500
    assert result.body is None
    assert result.etag == '"v1"'


async def test_script_steps_are_used_once_and_the_last_repeats(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_script("/s.json", [Step(status=503), Step.json(PAYLOAD)])

    outcomes = [(await fetcher.get(server.url("/s.json"))).outcome for _ in range(3)]

    assert outcomes == [FetchOutcome.ERROR, FetchOutcome.OK, FetchOutcome.OK]
    assert server.count("/s.json") == 3


@pytest.mark.parametrize(
    ("step", "accept"),
    [
        (Step.truncated_json(PAYLOAD), "application/json"),
        (Step.html("<html><body>Just a moment...</body></html>"), "text/html"),
    ],
    ids=["truncated-json", "html"],
)
async def test_body_is_returned_verbatim_whatever_it_holds(
    server: FakeStatusServer, fetcher: HttpFetcher, step: Step, accept: str
) -> None:
    # Judging the payload is the parser's job; the fetcher only moves bytes.
    server.set_script("/s", [step])

    result = await fetcher.get(server.url("/s"), accept=accept)

    assert result.outcome is FetchOutcome.OK
    assert result.body == step.body
    assert server.requests[0].headers["Accept"] == accept


async def test_hanging_server_times_out(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    server.set_script("/hang", [Step(hang=True)])
    fetcher = HttpFetcher(session, timeout=0.2)

    result = await fetcher.get(server.url("/hang"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "timed out after 0.2 s"
    assert result.http_status is None
    assert 0.2 <= result.elapsed < GENEROUS_TIMEOUT


async def test_body_that_stalls_times_out(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    # The total timeout must cover the body, not only the wait for headers.
    server.set_script("/s", [replace(Step.json(PAYLOAD), cut_at=5, after_cut="hang")])
    fetcher = HttpFetcher(session, timeout=0.2)

    result = await fetcher.get(server.url("/s"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "timed out after 0.2 s"
    assert result.http_status == 200


async def test_connection_dropped_mid_body_is_an_error(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_script("/s", [Step(body=json.dumps(PAYLOAD).encode(), cut_at=5)])

    result = await fetcher.get(server.url("/s"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "response body truncated or undecodable"
    assert result.body is None


def _small_receive_buffer(addr_info: AddrInfoType) -> socket.socket:
    family, kind, proto, _, _ = addr_info
    sock = socket.socket(family, kind, proto)
    # Caps kernel buffering so what the server sent is close to what the client read.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
    return sock


async def test_huge_streamed_body_is_cut_off_near_the_cap(server: FakeStatusServer) -> None:
    server.set_script("/huge", [Step(huge_bytes=HUGE)])
    connector = aiohttp.TCPConnector(socket_factory=_small_receive_buffer)
    async with aiohttp.ClientSession(connector=connector) as session:
        fetcher = HttpFetcher(session, timeout=GENEROUS_TIMEOUT, max_body_bytes=1_000_000)

        result = await fetcher.get(server.url("/huge"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "body larger than 1 MB"
    assert result.body is None
    # Cap + socket buffers + aiohttp's read-ahead: far below the 50 MB on offer.
    assert 1_000_000 < server.bytes_sent["/huge"] < 2_000_000


async def test_declared_oversize_body_is_rejected_before_reading(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    # The server sends headers and then nothing: only an early rejection avoids the timeout.
    server.set_script(
        "/big", [Step(huge_bytes=HUGE, declare_length=True, cut_at=0, after_cut="hang")]
    )
    fetcher = HttpFetcher(session, timeout=GENEROUS_TIMEOUT, max_body_bytes=1_000_000)

    result = await fetcher.get(server.url("/big"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "body larger than 1 MB"
    assert result.http_status == 200


@pytest.mark.parametrize(("size", "outcome"), [(1000, FetchOutcome.OK), (1001, FetchOutcome.ERROR)])
async def test_cap_is_inclusive(
    server: FakeStatusServer,
    session: aiohttp.ClientSession,
    size: int,
    outcome: FetchOutcome,
) -> None:
    server.set_body("/s", b"x" * size)
    fetcher = HttpFetcher(session, max_body_bytes=1000)

    result = await fetcher.get(server.url("/s"))

    assert result.outcome is outcome


async def test_redirect_within_the_limit_is_followed(
    server: FakeStatusServer, fetcher: HttpFetcher
) -> None:
    server.set_script("/old", [Step.redirect("/new", status=301)])
    server.set_json("/new", PAYLOAD)

    result = await fetcher.get(server.url("/old"))

    assert result.outcome is FetchOutcome.OK
    assert result.body is not None
    assert json.loads(result.body) == PAYLOAD


async def test_redirect_loop_is_an_error_after_the_limit(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    server.set_script("/loop", [Step.redirect("/loop?token=s3cret")])
    fetcher = HttpFetcher(session, timeout=GENEROUS_TIMEOUT, max_redirects=3)

    result = await fetcher.get(server.url("/loop?token=s3cret"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "more than 3 redirects"
    assert server.count("/loop") <= 4
    # aiohttp's own message quotes the URL; ours must not leak the query string.
    assert "s3cret" not in result.error


async def test_zero_redirects_reports_the_redirect_status(
    server: FakeStatusServer, session: aiohttp.ClientSession
) -> None:
    server.set_script("/old", [Step.redirect("/new")])
    fetcher = HttpFetcher(session, max_redirects=0)

    result = await fetcher.get(server.url("/old"))

    assert result.error == "HTTP 302"
    assert server.count("/new") == 0


async def test_connection_reset_is_an_error(server: FakeStatusServer, fetcher: HttpFetcher) -> None:
    server.set_script("/reset", [Step(reset=True)])

    result = await fetcher.get(server.url("/reset"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error in {"connection reset", "server closed the connection"}
    assert result.http_status is None


async def test_nothing_listening_is_connection_refused(fetcher: HttpFetcher) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = await fetcher.get(f"http://127.0.0.1:{port}/api/v2/summary.json")

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == "connection refused"


@pytest.mark.parametrize(
    ("url", "error"),
    [("not a url", "invalid URL"), ("ftp://127.0.0.1/x", "not an http(s) URL")],
)
async def test_unusable_url_is_an_error_not_an_exception(
    fetcher: HttpFetcher, url: str, error: str
) -> None:
    result = await fetcher.get(url)

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == error


async def test_cancellation_propagates(server: FakeStatusServer, fetcher: HttpFetcher) -> None:
    server.set_script("/hang", [Step(hang=True)])
    task = asyncio.create_task(fetcher.get(server.url("/hang")))
    await server.wait_for("/hang")

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_new_http_session_limits_connections_per_host() -> None:
    async with new_http_session(user_agent=USER_AGENT, limit_per_host=2) as http:
        assert isinstance(http.connector, aiohttp.TCPConnector)
        assert http.connector.limit_per_host == 2
        assert http.headers["User-Agent"] == USER_AGENT


@pytest.mark.parametrize(
    "limits",
    [{"timeout": 0.0}, {"max_body_bytes": 0}, {"max_redirects": -1}],
    ids=["timeout", "body", "redirects"],
)
async def test_nonsensical_limits_are_rejected(
    session: aiohttp.ClientSession, limits: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match=next(iter(limits))):
        HttpFetcher(session, **limits)  # type: ignore[arg-type]
