"""Where a link really goes: links people share, and the web links replies carry."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

_HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")
_KEPT = ":/?#[]@!$&'*+,;=%~"
"""What `WebLink.parse` leaves as written besides letters, digits and ``-._``: no white space,
``()`` (Discord markdown), ``<>|`` (Slack mrkdwn), quotes, backslashes or non-ASCII."""
_LINK_CHARACTERS = re.compile(r"^[A-Za-z0-9\-._" + re.escape(_KEPT) + r"]+$")
MAX_WEB_LINK = 512
"""Discord's limit for a link button's address, the tightest of the platforms."""


@dataclass(frozen=True, slots=True)
class WebLink:
    """An http(s) address any renderer may put in a link or a link button as it is.

    Checked when made: a plain host (`plain_link_host`), at most `MAX_WEB_LINK` characters, and
    no character that would end or break a link in Discord markdown, Slack mrkdwn or a terminal.
    `parse` percent-encodes those in an address from elsewhere (a status page, the database).
    """

    address: str

    def __post_init__(self) -> None:
        if not _is_web_link(self.address):
            raise ValueError(f"not a web link: {self.address[:80]!r}")

    @classmethod
    def parse(cls, text: str | None) -> WebLink | None:
        """``text`` as a web link, characters links cannot hold percent-encoded; None if none."""
        if not text:
            return None
        address = quote(text.strip(), safe=_KEPT)
        return cls(address) if _is_web_link(address) else None

    def __str__(self) -> str:
        return self.address


def _is_web_link(address: str) -> bool:
    return (
        len(address) <= MAX_WEB_LINK
        and _LINK_CHARACTERS.match(address) is not None
        and plain_link_host(address) is not None
    )


def plain_link_host(link: str) -> str | None:
    """The host a browser opens for an http(s) ``link``, or None when it is not a plain one.

    None for a user name or password before an ``@`` (``https://status.openai.com@evil.example``
    opens evil.example), and for a host that is not letters, digits, hyphens and dots or an IP
    address: ``%40``, ``\\`` and look-alike dots would be decoded or re-read by a browser into
    some other host than the one shown.
    """
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme.casefold() not in {"http", "https"} or host is None or "@" in parts.netloc:
        return None
    if _HOST_NAME.match(host) or is_ip_address(host):
        return host
    return None


def is_ip_address(text: str) -> bool:
    """Whether ``text`` is an IPv4 or IPv6 address as written (no brackets, no port)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
