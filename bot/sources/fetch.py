"""Polite, bounded HTTP GET for status sources: conditional, time- and size-limited, never raises.

Every failure becomes a `FetchResult` with a short error line that is safe to log and to show an
operator: it never contains the URL, whose query string may hold a secret.

URLs an admin typed (custom services) go another way, `GuardedRoute`: a session whose connector
resolves through the address policy, and every redirect hop checked, at every fetch.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp import hdrs

from bot.net.address_policy import AddressPolicy, AddressRefused, literal_address, policy_connector

log = logging.getLogger(__name__)

_CHUNK_BYTES = 64 * 1024
_REDIRECTS = {301, 302, 303, 307, 308}


class FetchOutcome(StrEnum):
    """What one GET produced."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"


@dataclass(slots=True)  # not frozen: three per page read, and frozen's __init__ costs 4x as much
class FetchResult:
    """The outcome of one GET, with the validators to send next time (read, never changed)."""

    outcome: FetchOutcome
    body: bytes | None
    etag: str | None
    last_modified: str | None
    http_status: int | None
    error: str | None
    elapsed: float


def new_http_session(*, user_agent: str, limit_per_host: int = 4) -> aiohttp.ClientSession:
    """A session that identifies the bot and opens at most `limit_per_host` connections per host.

    Call it from a coroutine (the connector binds to the running loop) and close it when done.
    """
    connector = aiohttp.TCPConnector(limit_per_host=limit_per_host)
    return aiohttp.ClientSession(connector=connector, headers={hdrs.USER_AGENT: user_agent})


def _trust_nothing(url: str) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class GuardedRoute:
    """How URLs that are not trusted are fetched: `session`'s connector resolves through
    `policy` (build both with `guarded_route`). `trusts` names the URLs that may skip it (the
    built-in catalog's); every other URL is guarded."""

    session: aiohttp.ClientSession
    policy: AddressPolicy
    trusts: Callable[[str], bool] = field(default=_trust_nothing)


@contextlib.asynccontextmanager
async def guarded_route(
    policy: AddressPolicy,
    *,
    user_agent: str,
    trusts: Callable[[str], bool] = _trust_nothing,
    limit_per_host: int = 4,
) -> AsyncIterator[GuardedRoute]:
    """A `GuardedRoute` with a session of its own, closed on exit."""
    connector = policy_connector(policy, limit_per_host=limit_per_host)
    async with aiohttp.ClientSession(
        connector=connector, headers={hdrs.USER_AGENT: user_agent}
    ) as session:
        yield GuardedRoute(session, policy, trusts)


class HttpFetcher:
    """Conditional GETs bounded in time, size and redirects; failures are results, not raised.

    With a `guarded` route, every URL it does not trust is fetched through it; redirects are
    followed here, one hop at a time, so each hop's address is checked before it is asked.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        max_body_bytes: int = 5_000_000,
        max_redirects: int = 5,
        guarded: GuardedRoute | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        self._session = session
        self._timeout = timeout
        self._client_timeout = _deadline(timeout)
        self._max_body_bytes = max_body_bytes
        self._max_redirects = max_redirects
        self._guarded = guarded

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str = "application/json",
    ) -> FetchResult:
        """GET `url`, revalidating with the given validators; only cancellation propagates."""
        started = time.monotonic()
        headers = {hdrs.ACCEPT: accept}
        if etag:
            headers[hdrs.IF_NONE_MATCH] = etag
        if last_modified:
            headers[hdrs.IF_MODIFIED_SINCE] = last_modified

        status: int | None = None  # known once headers arrive; kept for body-stage failures

        def failed(message: str) -> FetchResult:
            # Hand the caller's validators back so storing them blindly never loses them.
            elapsed = time.monotonic() - started
            return FetchResult(
                FetchOutcome.ERROR, None, etag, last_modified, status, message, elapsed
            )

        guarded = self._guarded
        if guarded is not None and guarded.trusts(url):
            guarded = None
        session = self._session if guarded is None else guarded.session
        hop, timeout = url, self._client_timeout
        try:
            for hops in range(self._max_redirects + 1):
                if hops:  # one deadline for every hop, as aiohttp's own redirects had
                    timeout = _deadline(self._timeout - (time.monotonic() - started))
                if guarded is not None:
                    _check_literal_host(hop, guarded.policy)
                async with session.get(
                    hop,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                    # The caller's session may raise on 4xx/5xx; reported here instead.
                    raise_for_status=False,
                ) as response:
                    if response.status == 304:  # most answers, at thousands of pages: no detour
                        return FetchResult(
                            FetchOutcome.NOT_MODIFIED,
                            None,
                            response.headers.get(hdrs.ETAG) or etag,
                            response.headers.get(hdrs.LAST_MODIFIED) or last_modified,
                            304,
                            None,
                            time.monotonic() - started,
                        )
                    location = response.headers.get(hdrs.LOCATION)
                    if response.status not in _REDIRECTS or not location:
                        status = response.status
                        answer = await self._answer(response, started)
                        return failed(answer) if isinstance(answer, str) else answer
                    if hops == self._max_redirects:
                        if hops == 0:  # redirects disabled: the answer is the error
                            status = response.status
                            return failed(f"HTTP {status}")
                        return failed(f"more than {self._max_redirects} redirects")
                    hop = urljoin(hop, location)
                    if urlsplit(hop).scheme not in {"http", "https"}:
                        return failed("invalid redirect")
            raise AssertionError("unreachable: the loop returns")  # pragma: no cover
        except TimeoutError:
            # aiohttp's own timeouts subclass TimeoutError; the total timeout also covers the body.
            return failed(f"timed out after {self._timeout:g} s")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            if _refused(exc):  # the operator's clue; the admin reads one generic message
                log.info("fetch refused by the address policy: %s", _os_error(exc))
            return failed(describe_transport_error(exc))

    async def _answer(self, response: aiohttp.ClientResponse, started: float) -> FetchResult | str:
        """What a final answer other than 304 (and not a redirect) gives, or the error line;
        body-stage errors propagate to `get`."""
        status = response.status
        if not 200 <= status < 300:
            return f"HTTP {status}"
        body = await self._read_capped(response)
        if body is None:
            return f"body larger than {_format_size(self._max_body_bytes)}"
        return FetchResult(
            FetchOutcome.OK,
            body,
            response.headers.get(hdrs.ETAG),
            response.headers.get(hdrs.LAST_MODIFIED),
            status,
            None,
            time.monotonic() - started,
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes | None:
        """The body, or None (and the connection dropped) once it would exceed the cap."""
        declared = response.content_length
        if declared is not None and declared > self._max_body_bytes:
            response.close()
            return None
        chunks: list[bytes] = []
        size = 0
        # Decompression is bounded by the chunk size too, so a gzip bomb cannot balloon here.
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_body_bytes:
                # Closing rather than releasing stops the transfer instead of draining it.
                response.close()
                return None
            chunks.append(chunk)
        return b"".join(chunks)


def _deadline(seconds: float) -> aiohttp.ClientTimeout:
    """A total timeout for one hop, which also covers reading its body.

    aiohttp's own timer, not a second one around it: one timer per request is measurably
    cheaper at thousands of pages. Not rounded up to a whole second as aiohttp does from 5 s on,
    so the deadline is exactly the one configured. Out of time already: TimeoutError at once.
    """
    if seconds <= 0:
        raise TimeoutError
    return aiohttp.ClientTimeout(total=seconds, ceil_threshold=math.inf)


def _check_literal_host(url: str, policy: AddressPolicy) -> None:
    """Refuse a URL whose host is a disallowed IP address: aiohttp connects to an address
    without asking the resolver, so the policy's resolver never sees it."""
    parts = urlsplit(url)
    address = literal_address(parts.hostname or "")
    if address is None:
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if not policy.allows(address, port):
        raise AddressRefused(f"{address} is not a public address")


def _os_error(exc: BaseException) -> BaseException:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return exc.os_error
    return exc


def _refused(exc: BaseException) -> bool:
    return isinstance(_os_error(exc), AddressRefused)


def describe_transport_error(exc: BaseException) -> str:
    """One short line for a transport failure; aiohttp's own messages may embed the URL."""
    if _refused(exc):
        return "address not allowed (not a public address)"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "DNS lookup failed"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate rejected"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.RedirectClientError):
        return "invalid redirect"
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return "not an http(s) URL"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server closed the connection"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "response body truncated or undecodable"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "malformed HTTP response"
    if isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, OSError):
        if exc.errno == errno.ECONNREFUSED or isinstance(exc, ConnectionRefusedError):
            return "connection refused"
        if exc.errno == errno.ECONNRESET or isinstance(exc, ConnectionResetError):
            return "connection reset"
        if exc.strerror:
            return f"network error: {exc.strerror.lower()}"
    if isinstance(exc, UnicodeError):
        return "undecodable header or URL"
    return f"request failed ({type(exc).__name__})"


def _format_size(size: int) -> str:
    """``5 MB``, ``1.5 MB``, ``64 kB``, ``900 bytes``: decimal units, as the caps are written."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:g} MB"
    if size >= 1_000:
        return f"{size / 1_000:g} kB"
    return f"{size} bytes"
