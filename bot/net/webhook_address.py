"""Where outgoing webhooks may go: http(s) URLs on public addresses only (no SSRF).

An admin who could point a webhook at ``http://10.0.0.5/`` or the cloud metadata address
``169.254.169.254`` would make the bot call into our own network. So every address a target's
host resolves to must be allowed by the address rule shared with custom status pages
(`bot.net.address_policy`), checked when it is subscribed and again before each send (DNS can
change in between); the sender then connects to exactly the addresses checked.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from bot.net.address_policy import (
    AddressPolicy,
    AddressRefused,
    NameUnresolved,
    checked_addresses,
)

MAX_URL_LENGTH = 2000
WebhookPolicy = AddressPolicy
"""How target addresses are resolved, and which non-public ones are allowed (the setting)."""


class WebhookAddressError(ValueError):
    """The URL may not be used; the message is safe to show to the admin who gave it."""


class WebhookDnsError(WebhookAddressError):
    """The host name did not resolve (possibly for a moment)."""


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


async def resolve_target(url: str, policy: AddressPolicy) -> tuple[SplitResult, list[str]]:
    """The URL's parts and the addresses to connect to, every one of them allowed."""
    parts = parse_target_url(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = await checked_addresses(parts.hostname or "", port, policy)
    except NameUnresolved:
        raise WebhookDnsError("The webhook's host name does not resolve.") from None
    except AddressRefused:
        raise WebhookAddressError(
            "The webhook URL points into a private network (loopback, private or link-local "
            "address); only public addresses are allowed."
        ) from None
    return parts, addresses
