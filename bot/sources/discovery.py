"""Find how to read a status page an admin names by URL: Statuspage API first, then a feed."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from bot.sources.catalog import SourceDef
from bot.sources.errors import SourceFormatError
from bot.sources.fetch import FetchOutcome, HttpFetcher
from bot.sources.parsers import parse_source

_FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json"}


class DiscoveryFailed(Exception):
    """No readable status source at that address; the message is shown to the admin."""


async def discover_source(fetcher: HttpFetcher, url: str, *, allow_private: bool) -> SourceDef:
    """The source to poll for a status page URL, or DiscoveryFailed saying why not."""
    base = _check_url(url)
    await _check_public(base, allow_private=allow_private)
    root = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"
    candidates = [base] if base.endswith(".json") else []
    for prefix in (base.split("?")[0].rstrip("/"), root):
        if prefix + "/api/v2/summary.json" not in candidates:
            candidates.append(prefix + "/api/v2/summary.json")
    for candidate in candidates:
        if await _parses(fetcher, candidate, "statuspage"):
            return SourceDef(kind="statuspage", url=candidate)
    result = await fetcher.get(base, accept="application/atom+xml, application/rss+xml, text/html")
    if result.outcome is not FetchOutcome.OK or result.body is None:
        raise DiscoveryFailed(f"I couldn't open that address ({result.error or 'no answer'}).")
    if _is_feed(result.body):
        return SourceDef(kind="feed", url=base)
    for link in _feed_links(result.body, base):
        if await _parses(fetcher, link, "feed"):
            return SourceDef(kind="feed", url=link)
    raise DiscoveryFailed(
        "I couldn't find a status API (/api/v2/summary.json) or an RSS/Atom feed there."
    )


def _check_url(url: str) -> str:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DiscoveryFailed("The address must start with https:// (or http://).")
    if parts.username or parts.password:
        raise DiscoveryFailed("The address must not contain a user name or password.")
    return text


async def _check_public(url: str, *, allow_private: bool) -> None:
    # Polling an internal address on an admin's say-so would let anyone probe our network.
    if allow_private:
        return
    host = urlsplit(url).hostname or ""
    try:
        infos = await _resolve(host)
    except OSError:
        raise DiscoveryFailed("I couldn't resolve that host name.") from None
    for address in infos:
        ip = ipaddress.ip_address(address)
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise DiscoveryFailed(
                "That address points into a private network; I only read public pages."
            )


async def _resolve(host: str) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _parses(fetcher: HttpFetcher, url: str, kind: str) -> bool:
    result = await fetcher.get(url)
    if result.outcome is not FetchOutcome.OK or result.body is None:
        return False
    try:
        parse_source(kind, result.body)
    except SourceFormatError:
        return False
    return True


def _is_feed(body: bytes) -> bool:
    head = body.lstrip()[:500].lower()
    if not (head.startswith(b"<?xml") or head.startswith(b"<rss") or head.startswith(b"<feed")):
        return False
    try:
        parse_source("feed", body)
    except SourceFormatError:
        return False
    return True


class _LinkFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: (v or "") for k, v in attrs}
        if tag == "link" and values.get("type", "").lower() in _FEED_TYPES and values.get("href"):
            self.links.append(values["href"])


def _feed_links(body: bytes, base: str) -> list[str]:
    finder = _LinkFinder()
    try:
        finder.feed(body[:500_000].decode("utf-8", errors="replace"))
    except (ValueError, AssertionError):
        return []
    links = [urljoin(base, link) for link in finder.links[:3]]
    return [link for link in links if re.match(r"^https?://", link)]
