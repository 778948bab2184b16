"""Per-client rate limiting of the public web routes, and whose address counts."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import Settings, parse_trusted_proxies
from bot.web.ratelimit import (
    RateLimiter,
    client_address,
    retry_after_header,
)
from tests.conftest import FakeClock
from tests.openapi_check import check_response
from tests.web_seed import seeded_web


def test_a_bucket_allows_a_burst_then_refills_at_the_rate(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("a") == pytest.approx(20.0)  # one token every 20 s
    assert limiter.take("b") == 0.0  # another client has its own bucket
    clock.advance(seconds=10)
    assert limiter.take("a") == pytest.approx(10.0)
    clock.advance(seconds=10)
    assert limiter.take("a") == 0.0
    clock.advance(hours=5)  # refills to the burst, not beyond
    assert [limiter.take("a") for _ in range(4)][-1] > 0


def test_a_clock_stepping_back_mints_no_tokens(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=1, clock=clock)
    assert limiter.take("a") == 0.0
    clock.advance(seconds=-3600)
    wait = limiter.take("a")
    assert 0 < wait <= 60


def test_memory_stays_bounded_least_recent_first(clock: FakeClock) -> None:
    limiter = RateLimiter(per_minute=1, clock=clock, max_clients=3)
    for n in range(10_000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 3
    limiter.take("x")
    limiter.take("10.0.39.15")  # kept (recent): still empty
    assert limiter.take("10.0.39.15") > 0
    assert limiter.take("10.0.0.0") == 0.0  # dropped long ago: starts full again
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(per_minute=0, clock=clock)


@pytest.mark.parametrize(("wait", "header"), [(0.01, "1"), (1.0, "1"), (19.2, "20")])
def test_retry_after_is_whole_seconds_never_zero(wait: float, header: str) -> None:
    assert retry_after_header(wait) == header


PROXIES = parse_trusted_proxies("127.0.0.1, 10.0.0.0/8, ::1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("203.0.113.9", "1.2.3.4", (), "203.0.113.9"),  # no proxies trusted: header ignored
        ("203.0.113.9", "1.2.3.4", PROXIES, "203.0.113.9"),  # peer is no proxy of ours
        ("127.0.0.1", None, PROXIES, "127.0.0.1"),
        ("127.0.0.1", "198.51.100.7", PROXIES, "198.51.100.7"),
        # The client may send its own X-Forwarded-For: only the hop our proxy added counts.
        ("127.0.0.1", "6.6.6.6, 198.51.100.7", PROXIES, "198.51.100.7"),
        ("127.0.0.1", "198.51.100.7, 10.1.2.3", PROXIES, "198.51.100.7"),
        ("127.0.0.1", "10.1.2.3, 10.9.9.9", PROXIES, "10.1.2.3"),
        ("127.0.0.1", "not-an-ip", PROXIES, "127.0.0.1"),
        ("::1", "2001:db8::5", PROXIES, "2001:db8::5"),
        (None, None, (), "unknown"),
    ],
)
def test_client_address_believes_only_trusted_proxies(
    peer: str | None, forwarded: str | None, trusted: tuple[object, ...], client: str
) -> None:
    assert client_address(peer, forwarded, trusted) == client  # type: ignore[arg-type]


def test_bad_trusted_proxies_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="not-a-net"):
        parse_trusted_proxies("10.0.0.0/8, not-a-net")
    with pytest.raises(ValidationError, match="not-a-net"):
        Settings(_env_file=None, trusted_proxies="not-a-net")
    assert Settings(_env_file=None, trusted_proxies="").trusted_proxies == ""


async def test_the_api_answers_429_with_retry_after(engine: AsyncEngine) -> None:
    async with seeded_web(engine, rate_limit_per_minute=3) as seeded:
        paths = ["/api/v1/services", "/", "/badge/github.svg"]  # one bucket for every route
        for path in paths:
            async with seeded.http.get(seeded.base + path) as response:
                assert response.status == 200
        # Without a trusted proxy, a forged X-Forwarded-For is no way around the limit.
        forged = {"X-Forwarded-For": "192.0.2.77"}
        async with seeded.http.get(seeded.base + "/api/v1/incidents", headers=forged) as response:
            body = await response.read()
            assert response.status == 429
            assert response.headers["Retry-After"] == "20"
            document = check_response("/api/v1/incidents", 429, body, response.headers)
            assert document["error"]["code"] == "rate_limited"
        async with seeded.http.get(seeded.base + "/badge/github.svg") as response:
            assert response.status == 429
            assert response.content_type == "text/plain"
        async with seeded.http.get(seeded.base + "/") as response:
            assert response.status == 429
            assert "Too many requests" in await response.text()
        async with seeded.http.get(seeded.base + "/healthz") as response:
            assert response.status == 200  # health checks are never limited
        seeded.clock.advance(seconds=20)
        async with seeded.http.get(seeded.base + "/api/v1/services") as response:
            assert response.status == 200
            assert json.loads(await response.read())["services"]


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(engine: AsyncEngine) -> None:
    async with seeded_web(engine, rate_limit_per_minute=1, trusted_proxies="127.0.0.1") as seeded:
        url = seeded.base + "/badge/github.svg"
        for client in ("198.51.100.1", "198.51.100.2"):
            async with seeded.http.get(url, headers={"X-Forwarded-For": client}) as response:
                assert response.status == 200, client
        async with seeded.http.get(url, headers={"X-Forwarded-For": "198.51.100.1"}) as response:
            assert response.status == 429
