"""Synthetic HTTP checks of a provider's API: is it answering, as expected, fast enough?

A probe is usually an unauthenticated request that should be refused quickly (``401``): the
provider's edge and auth layer are up even though we hold no key. Timeouts, connection errors and
5xx are failures; a slow but correct answer is "slow", which detection counts as degraded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeGuard

import aiohttp
from aiohttp import hdrs
from yarl import URL

from bot.sources.fetch import describe_transport_error

MAX_BODY_BYTES = 64 * 1024
MAX_REDIRECTS = 3
_METHODS = frozenset({"GET", "HEAD"})
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_OPTION_KEYS = frozenset({"method", "expect_status", "latency_budget_ms", "timeout_s"})
_CREDENTIAL_HEADERS = (hdrs.AUTHORIZATION, hdrs.PROXY_AUTHORIZATION)


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What to request and what counts as a healthy answer."""

    url: str
    method: str = "GET"
    expect_status: tuple[int, ...] = (200,)
    latency_budget_ms: int = 3000
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        url = URL(self.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError("probe url must be an absolute http(s) URL")
        if url.user is not None or url.password is not None:
            raise ValueError("probe url must not embed credentials")
        if self.method not in _METHODS:
            raise ValueError(f"probe method must be GET or HEAD, not {self.method!r}")
        if not self.expect_status:
            raise ValueError("probe expect_status must name at least one HTTP status")
        for status in self.expect_status:
            # 5xx always means the provider is failing, so it can never be the healthy answer.
            if not _is_int(status) or not 100 <= status < 500:
                raise ValueError(f"probe expect_status entries must be 100-499, not {status!r}")
        budget = self.latency_budget_ms
        if not _is_int(budget) or budget <= 0:
            raise ValueError(f"probe latency_budget_ms must be a positive integer, not {budget!r}")
        timeout = self.timeout_s
        # `not > 0` also refuses NaN.
        if not (_is_int(timeout) or isinstance(timeout, float)) or not timeout > 0:
            raise ValueError(f"probe timeout_s must be a positive number, not {timeout!r}")

    @classmethod
    def from_options(cls, url: str, options: Mapping[str, object]) -> ProbeSpec:
        """Build a spec from a catalog source table; ValueError names the bad option."""
        unknown = sorted(set(options) - _OPTION_KEYS)
        if unknown:
            raise ValueError(f"unknown probe option(s): {', '.join(unknown)}")
        method = options.get("method", "GET")
        if not isinstance(method, str):
            raise ValueError(f"probe method must be GET or HEAD, not {method!r}")
        statuses = options.get("expect_status", [200])
        if not isinstance(statuses, list | tuple) or not all(_is_int(s) for s in statuses):
            raise ValueError(f"probe expect_status must be a list of HTTP statuses: {statuses!r}")
        budget = options.get("latency_budget_ms", 3000)
        if not _is_int(budget):
            raise ValueError(f"probe latency_budget_ms must be a positive integer, not {budget!r}")
        timeout = options.get("timeout_s", 10.0)
        if not _is_int(timeout) and not isinstance(timeout, float):
            raise ValueError(f"probe timeout_s must be a positive number, not {timeout!r}")
        # Ranges are checked in __post_init__, so a spec built directly is checked the same way.
        return cls(
            url=url,
            method=method.upper(),
            expect_status=tuple(statuses),
            latency_budget_ms=budget,
            timeout_s=float(timeout),
        )


def _is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a bool (TOML and JSON booleans are ints in Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


class ProbeVerdict(StrEnum):
    """How one probe went."""

    OK = "ok"
    SLOW = "slow"  # answered as expected but over the latency budget: up, yet degraded
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """The verdict of one probe; ``error`` is one short line that never contains the URL."""

    verdict: ProbeVerdict
    http_status: int | None
    latency_ms: float
    error: str | None


def judge(
    spec: ProbeSpec, *, http_status: int | None, latency_ms: float, error: str | None
) -> ProbeResult:
    """Turn what one request observed into a verdict; pure, so detection rules are testable."""

    def result(verdict: ProbeVerdict, reason: str | None) -> ProbeResult:
        return ProbeResult(verdict, http_status, latency_ms, reason)

    if error is not None or http_status is None:
        return result(ProbeVerdict.FAILED, error or "no response")
    if http_status >= 500:
        return result(ProbeVerdict.FAILED, f"HTTP {http_status}")
    if http_status not in spec.expect_status:
        expected = " or ".join(str(status) for status in spec.expect_status)
        return result(ProbeVerdict.FAILED, f"HTTP {http_status}, expected {expected}")
    if latency_ms > spec.latency_budget_ms:
        return result(
            ProbeVerdict.SLOW, f"took {latency_ms:.0f} ms, budget {spec.latency_budget_ms} ms"
        )
    return result(ProbeVerdict.OK, None)


class HttpProber:
    """Runs probes over a shared session that must carry no credentials; never raises."""

    def __init__(
        self, session: aiohttp.ClientSession, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        # A probe must look like an anonymous client: any credential would change the answer
        # (200 instead of 401) and leak a key to whatever the probe URL points at.
        if session.auth is not None or any(h in session.headers for h in _CREDENTIAL_HEADERS):
            raise ValueError("the probe session must not carry credentials")
        if session.trust_env:
            raise ValueError("the probe session must not trust the environment (netrc credentials)")
        self._session = session
        self._clock = clock

    async def probe(self, spec: ProbeSpec) -> ProbeResult:
        """Request ``spec.url`` once, following up to MAX_REDIRECTS redirects, and judge it."""
        started = self._clock()
        seen: list[int] = []  # the final response's status, once its headers arrive
        error: str | None = None
        try:
            # One deadline for every hop and the body, so redirects cannot stretch the timeout.
            async with asyncio.timeout(spec.timeout_s):
                await self._request(spec, seen)
        except TimeoutError:
            error = f"timed out after {spec.timeout_s:g} s"
        except _ProbeError as exc:
            error = str(exc)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            error = describe_transport_error(exc)
        except Exception as exc:
            # A probe reports what went wrong; it never takes the poller down with it.
            error = f"request failed ({type(exc).__name__})"
        latency_ms = (self._clock() - started) * 1000
        status = seen[-1] if seen else None
        return judge(spec, http_status=status, latency_ms=latency_ms, error=error)

    async def _request(self, spec: ProbeSpec, seen: list[int]) -> None:
        """Follow redirects, record the final status in `seen`, read at most MAX_BODY_BYTES."""
        url = URL(spec.url)
        # A probe that expects a redirect status must see it rather than follow it.
        follow = not any(status in _REDIRECT_STATUSES for status in spec.expect_status)
        for _ in range(MAX_REDIRECTS + 1):
            async with self._session.request(
                spec.method,
                url,
                # Redirects are followed here, not by aiohttp, which would take credentials
                # from a Location such as https://user:pass@host/.
                allow_redirects=False,
                raise_for_status=False,
            ) as response:
                location = response.headers.get(hdrs.LOCATION)
                if follow and response.status in _REDIRECT_STATUSES and location:
                    url = _redirect_target(url, location)
                    continue
                seen.append(response.status)
                await _read_capped(response)
                return
        raise _ProbeError(f"more than {MAX_REDIRECTS} redirects")


class _ProbeError(Exception):
    """A failure whose message is already one safe line (no URL)."""


def _redirect_target(current: URL, location: str) -> URL:
    """Where a redirect points, refused when it is not plain http(s) or carries credentials."""
    try:
        target = current.join(URL(location))
    except ValueError:
        raise _ProbeError("invalid redirect") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise _ProbeError("invalid redirect")
    if target.user is not None or target.password is not None:
        raise _ProbeError("redirect carries credentials")
    return target


async def _read_capped(response: aiohttp.ClientResponse) -> None:
    """Read and drop up to MAX_BODY_BYTES, so latency includes the start of the body."""
    remaining = MAX_BODY_BYTES
    while remaining > 0:
        chunk = await response.content.read(remaining)
        if not chunk:
            return
        remaining -= len(chunk)
    if not response.content.at_eof():
        # Closing rather than releasing stops the transfer instead of draining a large body.
        response.close()
