"""Which addresses the bot may connect to on someone else's say-so: public ones only (no SSRF).

Admins name URLs: custom status pages (`/service add`) and outgoing webhooks. Were such a URL
allowed to reach ``10.0.0.5`` or the cloud metadata address ``169.254.169.254``, any Discord
server owner could make the bot call into our own network. One rule (`is_public`) judges every
address, including IPv6 forms that embed an IPv4 address (``::ffff:10.0.0.1``,
``64:ff9b::a00:1``, ``2002:a00:1::``), and `PolicyResolver` applies it inside aiohttp's
connector: a name is resolved once, every address is checked, and the connection goes to exactly
those addresses, so a second lookup cannot answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port → IP addresses (injected in tests, so no test needs real DNS)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Listed rather than read from `is_global`, whose answers differ between Python releases (3.11
# calls 64:ff9b::/96, 2002::/16, fec0::/10 and ::/96 global).
_NOT_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT: the provider's side of our network
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_NOT_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments, Teredo 2001::/32 among them (obfuscated IPv4)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


def is_public(address: str) -> bool:
    """Whether an IP address is on the public internet. An IPv6 address that carries an IPv4
    address (mapped, translated, compatible, NAT64, 6to4) is judged by the IPv4 address."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv4Address):
        return _public_v4(ip)
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        return _public_v4(embedded)
    return (
        ip in _GLOBAL_UNICAST_V6
        and not any(ip in net for net in _NOT_PUBLIC_V6)
        and ip.is_global  # belt and braces: whatever this Python knows to be special too
    )


def _public_v4(ip: ipaddress.IPv4Address) -> bool:
    return not any(ip in net for net in _NOT_PUBLIC_V4) and ip.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or ip in _IPV4_COMPATIBLE or ip in _IPV4_TRANSLATED:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    # Local-use NAT64 (64:ff9b:1::/48) may embed its IPv4 address at several offsets, and
    # 64:ff9b:1:: is outside 2000::/3, so `is_public` refuses it without decoding.
    return None


class AddressRefused(OSError):
    """The host resolves to an address the policy does not allow (an OSError, so aiohttp
    reports it as a failed connection and nothing is sent)."""


class NameUnresolved(OSError):
    """The host name did not resolve (possibly for a moment)."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """How hosts are resolved, and which addresses may be reached besides public ones."""

    resolver: Resolver = field(default=system_resolver)
    allow_private: bool = False
    """Every address allowed: for a bot that should read intranet pages (a setting)."""
    allowed_endpoints: frozenset[tuple[str, int]] = frozenset()
    """(address, port) pairs allowed although not public: how tests reach a loopback fake
    without opening the rest of loopback."""

    def allows(self, address: str, port: int) -> bool:
        """Whether a connection to this address and port is allowed."""
        if self.allow_private or is_public(address):
            return True
        canonical = str(ipaddress.ip_address(address.split("%", 1)[0]))
        return (canonical, port) in self.allowed_endpoints


def literal_address(host: str) -> str | None:
    """The host as an IP address, if it is one (``[::1]`` brackets allowed)."""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


async def checked_addresses(host: str, port: int, policy: AddressPolicy) -> list[str]:
    """The addresses of `host`, resolved once, every one allowed; else AddressRefused (or
    NameUnresolved). A name that also points at one private address is refused as a whole:
    its owner is playing games."""
    literal = literal_address(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            addresses = await policy.resolver(host, port)
        except OSError as exc:
            raise NameUnresolved(f"{host} does not resolve ({exc})") from None
    if not addresses:
        raise NameUnresolved(f"{host} does not resolve")
    refused = [a for a in addresses if not policy.allows(a, port)]
    if refused:
        raise AddressRefused(f"{host} resolves to a non-public address ({refused[0]})")
    return addresses


class PolicyResolver(AbstractResolver):
    """aiohttp resolver that answers only with addresses the policy allows, so a connector
    built on it connects to exactly the addresses checked, at every connection."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await checked_addresses(host, port, self._policy)
        return [pinned_result(host, address, port) for address in addresses]

    async def close(self) -> None:
        return None


def pinned_result(host: str, address: str, port: int) -> ResolveResult:
    """aiohttp's record of one resolved address (numeric: no further lookup)."""
    return ResolveResult(
        hostname=host,
        host=address,
        port=port,
        family=socket.AF_INET6 if ":" in address else socket.AF_INET,
        proto=0,
        flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
    )


def policy_connector(policy: AddressPolicy, *, limit_per_host: int = 4) -> aiohttp.TCPConnector:
    """A connector that resolves through the policy at every connection: no DNS cache and no
    kept-alive connections, so a name that later points elsewhere is checked again."""
    return aiohttp.TCPConnector(
        resolver=PolicyResolver(policy),
        use_dns_cache=False,
        force_close=True,
        limit_per_host=limit_per_host,
    )
