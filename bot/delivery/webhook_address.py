"""Where outgoing webhooks may go: http(s) URLs on public addresses only (no SSRF).

An admin who could point a webhook at ``http://10.0.0.5/`` or the cloud metadata address
``169.254.169.254`` would make the bot call into our own network. So every address a target's
host resolves to must be public, checked when it is subscribed and again before each send (DNS
can change in between); the sender then connects to exactly the addresses checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

MAX_URL_LENGTH = 2000
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port → IP addresses (injected in tests, so no test needs real DNS)."""


class WebhookAddressError(ValueError):
    """The URL may not be used; the message is safe to show to the admin who gave it."""


class WebhookDnsError(WebhookAddressError):
    """The host name did not resolve (possibly for a moment)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    """How target addresses are resolved, and whether private ones are allowed."""

    resolver: Resolver = field(default=system_resolver)
    allow_private: bool = False


def parse_target_url(url: str) -> SplitResult:
    """The URL split, or WebhookAddressError saying what is wrong with it."""
    text = url.strip()
    if len(text) > MAX_URL_LENGTH:
        raise WebhookAddressError(f"The webhook URL is too long (at most {MAX_URL_LENGTH}).")
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"}:
        raise WebhookAddressError("The webhook URL must start with https:// (or http://).")
    if not parts.hostname:
        raise WebhookAddressError("The webhook URL has no host name.")
    if parts.username or parts.password:
        raise WebhookAddressError("The webhook URL must not contain a user name or password.")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError:
        raise WebhookAddressError("The webhook URL has an invalid port.") from None
    return parts


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet (not loopback, private, link-local,
    multicast, shared, reserved or unspecified)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def resolve_target(url: str, policy: WebhookPolicy) -> tuple[SplitResult, list[str]]:
    """The URL's parts and the addresses to connect to, every one of them allowed."""
    parts = parse_target_url(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = await policy.resolver(host, port)
        except OSError:
            raise WebhookDnsError("The webhook's host name does not resolve.") from None
    if not addresses:
        raise WebhookDnsError("The webhook's host name does not resolve.")
    if not policy.allow_private and not all(is_public(a) for a in addresses):
        raise WebhookAddressError(
            "The webhook URL points into a private network (loopback, private or link-local "
            "address); only public addresses are allowed."
        )
    return parts, addresses
