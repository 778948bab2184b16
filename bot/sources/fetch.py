"""Polite, bounded HTTP GET for status sources: conditional, time- and size-limited, never raises.

Every failure becomes a `FetchResult` with a short error line that is safe to log and to show an
operator: it never contains the URL, whose query string may hold a secret.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from aiohttp import hdrs

_CHUNK_BYTES = 64 * 1024


class FetchOutcome(StrEnum):
    """What one GET produced."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one GET, with the validators to send next time."""

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


class HttpFetcher:
    """Conditional GETs bounded in time, size and redirects; failures are results, not raised."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        timeout: float = 10.0,
        max_body_bytes: int = 5_000_000,
        max_redirects: int = 5,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if max_body_bytes <= 0:
            raise ValueError("max_body_bytes must be positive")
        if max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
        self._session = session
        self._timeout = timeout
        self._client_timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_body_bytes = max_body_bytes
        self._max_redirects = max_redirects

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

        try:
            async with self._session.get(
                url,
                headers=headers,
                timeout=self._client_timeout,
                # aiohttp reads max_redirects=0 as "no limit", so zero must disable redirects.
                allow_redirects=self._max_redirects > 0,
                max_redirects=self._max_redirects,
                # The caller's session may raise on 4xx/5xx; this module reports them instead.
                raise_for_status=False,
            ) as response:
                status = response.status
                if status == 304:
                    return FetchResult(
                        FetchOutcome.NOT_MODIFIED,
                        None,
                        response.headers.get(hdrs.ETAG) or etag,
                        response.headers.get(hdrs.LAST_MODIFIED) or last_modified,
                        status,
                        None,
                        time.monotonic() - started,
                    )
                if not 200 <= status < 300:
                    return failed(f"HTTP {status}")
                body = await self._read_capped(response)
                if body is None:
                    return failed(f"body larger than {_format_size(self._max_body_bytes)}")
                return FetchResult(
                    FetchOutcome.OK,
                    body,
                    response.headers.get(hdrs.ETAG),
                    response.headers.get(hdrs.LAST_MODIFIED),
                    status,
                    None,
                    time.monotonic() - started,
                )
        except TimeoutError:
            # aiohttp's own timeouts subclass TimeoutError; the total timeout also covers the body.
            return failed(f"timed out after {self._timeout:g} s")
        except aiohttp.TooManyRedirects:
            return failed(f"more than {self._max_redirects} redirects")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return failed(describe_transport_error(exc))

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


def describe_transport_error(exc: BaseException) -> str:
    """One short line for a transport failure; aiohttp's own messages may embed the URL."""
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
