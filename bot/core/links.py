"""Where a link really goes, for links people share with each other."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_HOST_NAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?$")


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
