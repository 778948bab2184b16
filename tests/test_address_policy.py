"""The one address rule for custom status pages and outgoing webhooks, and the guarded fetch.

No real DNS: names exist only in a `FakeDns`. The fake servers listen on 127.0.0.1, which the rule
refuses; a test opens exactly one of them with `allowed_endpoints`, standing in for a public host.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from bot.net.address_policy import AddressPolicy, is_public
from bot.sources.fetch import FetchOutcome, HttpFetcher, guarded_route, new_http_session
from tests.fakes.fake_dns import FakeDns
from tests.fakes.status_server import FakeStatusServer, Step

REFUSED = "address not allowed (not a public address)"
PRIVATE_IPV4 = ("10.0.0.1", "127.0.0.1", "169.254.169.254", "100.64.0.1")


def embeddings(ipv4: str) -> dict[str, str]:
    """Every IPv6 form that carries `ipv4`, by name."""
    v4 = int(ipaddress.IPv4Address(ipv4))
    teredo_server = int(ipaddress.IPv4Address("65.54.227.120"))
    forms = {
        "mapped ::ffff:0:0/96": (0xFFFF << 32) | v4,
        "translated ::ffff:0:0:0/96": (0xFFFF << 48) | v4,
        "compatible ::/96": v4,
        "NAT64 64:ff9b::/96": int(ipaddress.IPv6Address("64:ff9b::")) | v4,
        "local NAT64 64:ff9b:1::/48": int(ipaddress.IPv6Address("64:ff9b:1::")) | v4,
        "6to4 2002::/16": (0x2002 << 112) | (v4 << 80) | 1,
        # Teredo: server, flags, port and the client's address XOR-ed with all ones.
        "Teredo 2001::/32": (0x20010000 << 96)
        | (teredo_server << 64)
        | (0x8000 << 48)
        | (0x63BF << 32)
        | (v4 ^ 0xFFFFFFFF),
    }
    return {name: str(ipaddress.IPv6Address(value)) for name, value in forms.items()}


@pytest.mark.parametrize("ipv4", PRIVATE_IPV4)
def test_every_ipv6_form_of_a_private_address_is_refused(ipv4: str) -> None:
    forms = embeddings(ipv4)
    assert len(forms) == 7
    assert not is_public(ipv4)
    for name, address in forms.items():
        assert not is_public(address), f"{name}: {address}"


@pytest.mark.parametrize(
    "address",
    [
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "240.0.0.1",
        "224.0.0.1",
        "192.0.2.1",
        "192.0.0.8",
        "198.18.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "::",
        "::1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "100::1",
        "2001:db8::1",
        "3fff::1",
    ],
)
def test_special_purpose_addresses_are_refused(address: str) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "1.1.1.1",
        "100.128.0.1",  # just past shared address space
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:1.1.1.1",
        "64:ff9b::101:101",  # NAT64 of a public address reaches that address
        "2002:101:101::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_public(address)


def test_an_allowed_endpoint_opens_one_port_of_one_address_only() -> None:
    policy = AddressPolicy(allowed_endpoints=frozenset({("127.0.0.1", 8080)}))
    assert policy.allows("127.0.0.1", 8080)
    assert not policy.allows("127.0.0.1", 8081)
    assert not policy.allows("127.0.0.2", 8080)
    assert policy.allows("1.1.1.1", 443)
    assert AddressPolicy(allow_private=True).allows("10.0.0.1", 80)


@dataclass
class Guarded:
    fetcher: HttpFetcher
    dns: FakeDns
    page: FakeStatusServer
    """Allowed: its one address and port stand in for a public status page."""
    inside: FakeStatusServer
    """Not allowed: stands in for a service inside our network."""


@pytest.fixture
async def guarded() -> AsyncIterator[Guarded]:
    dns = FakeDns()
    async with FakeStatusServer() as page, FakeStatusServer() as inside:
        policy = AddressPolicy(
            resolver=dns.resolve, allowed_endpoints=frozenset({("127.0.0.1", page.port)})
        )
        async with (
            new_http_session(user_agent="tests") as http,
            guarded_route(policy, user_agent="tests") as route,
        ):
            yield Guarded(HttpFetcher(http, timeout=5, guarded=route), dns, page, inside)


async def test_a_name_is_resolved_once_per_fetch_and_checked_at_every_fetch(
    guarded: Guarded,
) -> None:
    """DNS rebinding: the lookup that is checked is the one connected to, and the next fetch
    (the next poll) looks up and checks again."""
    guarded.page.set_json("/api/v2/summary.json", {"ok": True})
    guarded.dns.point("status.acme.test", "127.0.0.1", "10.0.0.1")
    url = f"http://status.acme.test:{guarded.page.port}/api/v2/summary.json"

    first = await guarded.fetcher.get(url)
    assert first.outcome is FetchOutcome.OK
    assert guarded.dns.lookups == ["status.acme.test"]  # one lookup, no second opinion

    again = await guarded.fetcher.get(url)
    assert again.outcome is FetchOutcome.ERROR
    assert again.error == REFUSED
    assert guarded.dns.lookups == ["status.acme.test"] * 2
    assert guarded.page.count("/api/v2/summary.json") == 1


async def test_a_name_with_one_private_address_among_public_ones_is_refused(
    guarded: Guarded,
) -> None:
    async def mixed(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.0.0.1"]

    guarded.page.set_json("/x", {})
    policy = AddressPolicy(
        resolver=mixed, allowed_endpoints=frozenset({("127.0.0.1", guarded.page.port)})
    )
    async with (
        new_http_session(user_agent="tests") as http,
        guarded_route(policy, user_agent="tests") as route,
    ):
        result = await HttpFetcher(http, guarded=route).get(
            f"http://mixed.test:{guarded.page.port}/x"
        )
    assert result.error == REFUSED
    assert guarded.page.count("/x") == 0


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{inside}/secret",
        "http://[::ffff:127.0.0.1]:{inside}/secret",
        "http://internal.test:{inside}/secret",
        "http://169.254.169.254/latest/meta-data",
        "http://127.0.0.1:{page}@127.0.0.1:{inside}/secret",
    ],
)
async def test_a_redirect_into_our_network_is_refused(
    guarded: Guarded, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    guarded.dns.point("internal.test", "127.0.0.1")
    guarded.inside.set_json("/secret", {"secret": True})
    target = location.format(inside=guarded.inside.port, page=guarded.page.port)
    guarded.page.set_script("/moved", [Step.redirect(target)])

    with caplog.at_level(logging.INFO, logger="bot.sources.fetch"):
        result = await guarded.fetcher.get(guarded.page.url("/moved"))

    assert result.outcome is FetchOutcome.ERROR
    assert result.error == REFUSED
    assert guarded.page.count("/moved") == 1
    assert guarded.inside.count("/secret") == 0
    assert "refused by the address policy" in caplog.text  # the operator's clue


async def test_redirects_between_allowed_addresses_are_followed(guarded: Guarded) -> None:
    guarded.dns.point("status.acme.test", "127.0.0.1")
    port = guarded.page.port
    guarded.page.set_script("/old", [Step.redirect(f"http://status.acme.test:{port}/new")])
    guarded.page.set_json("/new", {"moved": True})

    result = await guarded.fetcher.get(guarded.page.url("/old"))

    assert result.outcome is FetchOutcome.OK
    assert result.body == b'{"moved": true}'


async def test_trusted_urls_skip_the_policy(guarded: Guarded) -> None:
    """The built-in catalog's URLs keep the ordinary session: the operator chose them."""
    guarded.inside.set_json("/builtin", {})
    trusted_url = guarded.inside.url("/builtin")
    policy = AddressPolicy(resolver=guarded.dns.resolve)
    async with (
        new_http_session(user_agent="tests") as http,
        guarded_route(policy, user_agent="tests", trusts={trusted_url}.__contains__) as route,
    ):
        fetcher = HttpFetcher(http, guarded=route)
        assert (await fetcher.get(trusted_url)).outcome is FetchOutcome.OK
        assert (await fetcher.get(guarded.inside.url("/other"))).error == REFUSED
