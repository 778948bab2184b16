"""Per-client token buckets for the web endpoints, and who the client is.

Memory stays bounded: at most ``max_clients`` buckets are kept, least recently seen dropped
first. A dropped client starts again with a full bucket, which only ever errs on the side of
serving a request.
"""

from __future__ import annotations

import ipaddress
import math
from collections import OrderedDict
from dataclasses import dataclass

from bot.core.links import is_ip_address
from bot.core.timeutil import Clock
from bot.settings import IPNetwork


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    """Seconds since the epoch of the last refill."""


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests a minute, bursts up to the same number."""

    def __init__(self, *, per_minute: int, clock: Clock, max_clients: int = 10_000) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock
        self._max = max_clients
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Spend one token for ``key``: 0.0 when allowed, else seconds until one is available."""
        bucket = self._refilled(key)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    def wait(self, key: str) -> float:
        """Seconds until ``key`` may spend a token (0.0: now), spending nothing."""
        bucket = self._refilled(key)
        return 0.0 if bucket.tokens >= 1.0 else (1.0 - bucket.tokens) / self._rate

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock().timestamp()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=self._capacity, at=now)
        else:
            # A clock that steps back must not mint tokens or make the wait negative.
            elapsed = max(0.0, now - bucket.at)
            bucket.tokens = min(self._capacity, bucket.tokens + elapsed * self._rate)
            bucket.at = max(bucket.at, now)
        self._buckets[key] = bucket
        while len(self._buckets) > self._max:
            self._buckets.popitem(last=False)
        return bucket


def retry_after_header(wait_seconds: float) -> str:
    """Whole seconds for ``Retry-After``, never 0 (0 invites an immediate retry)."""
    return str(max(1, math.ceil(wait_seconds)))


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[IPNetwork, ...]
) -> str:
    """The address to rate-limit: the peer, unless the peer is a trusted proxy.

    Behind trusted proxies, ``X-Forwarded-For`` is read from the right, skipping our own proxies;
    the first address that is not one of them is the client. Entries left of it were written by
    the client and could be anything, so they are never used.
    """
    address = peer or "unknown"
    if not trusted or not _is_trusted(address, trusted) or not forwarded_for:
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",")]):
        if not is_ip_address(hop):
            return address  # a garbled header: fall back to the proxy itself
        address = hop
        if not _is_trusted(hop, trusted):
            return hop
    return address


def _is_trusted(address: str, trusted: tuple[IPNetwork, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
