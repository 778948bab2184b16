"""Find how to read a status page an admin names by URL: Statuspage API first, then a feed.

Every request goes through the fetcher's guarded route (the address policy at each connection
and each redirect hop), discovered feed links included. Whatever fails, the admin reads one
message: telling a refused address from a closed port or a timeout would make `/service add` a
port scanner of our network. The operator finds the reasons in the log.
"""

from __future__ import annotations

import logging
import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from bot.core.status import SourceKind
from bot.sources.catalog import SourceDef
from bot.sources.errors import SourceFormatError
from bot.sources.fetch import FetchOutcome, HttpFetcher
from bot.sources.parsers import parse_source
from bot.sources.poller import loggable_url

log = logging.getLogger(__name__)

_FEED_TYPES = {"application/rss+xml", "application/atom+xml", "application/feed+json"}


NOT_READABLE = (
    "I couldn't read a status page at that address. I read Statuspage APIs "
    "(/api/v2/summary.json) and RSS/Atom feeds; check the address and try again."
)
"""The one answer for every network failure or refusal, whatever its reason."""


class DiscoveryFailed(Exception):
    """No readable status source at that address; the message is shown to the admin."""


async def discover_source(fetcher: HttpFetcher, url: str) -> SourceDef:
    """The source to poll for a status page URL, or DiscoveryFailed saying why not."""
    base = _check_url(url)
    reasons: list[str] = []
    try:
        return await _discover(fetcher, base, reasons)
    except DiscoveryFailed:
        log.info("no status source found at %s: %s", _loggable(base), "; ".join(reasons) or "none")
        raise


async def _discover(fetcher: HttpFetcher, base: str, reasons: list[str]) -> SourceDef:
    root = f"{urlsplit(base).scheme}://{urlsplit(base).netloc}"
    candidates = [base] if base.endswith(".json") else []
    for prefix in (base.split("?")[0].rstrip("/"), root):
        if prefix + "/api/v2/summary.json" not in candidates:
            candidates.append(prefix + "/api/v2/summary.json")
    for candidate in candidates:
        if await _parses(fetcher, candidate, SourceKind.STATUSPAGE, reasons):
            return SourceDef(kind=SourceKind.STATUSPAGE, url=candidate)
    result = await fetcher.get(base, accept="application/atom+xml, application/rss+xml, text/html")
    if result.outcome is not FetchOutcome.OK or result.body is None:
        reasons.append(f"page: {result.error or 'no answer'}")
        raise DiscoveryFailed(NOT_READABLE)
    if _is_feed(result.body):
        return SourceDef(kind=SourceKind.FEED, url=base)
    for link in _feed_links(result.body, base):
        # Fetched through the same guarded route: a link into our network is refused there.
        if await _parses(fetcher, link, SourceKind.FEED, reasons):
            return SourceDef(kind=SourceKind.FEED, url=link)
    reasons.append("no Statuspage API and no readable feed link")
    raise DiscoveryFailed(NOT_READABLE)


def _check_url(url: str) -> str:
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise DiscoveryFailed("The address must start with https:// (or http://).")
    if parts.username or parts.password:
        raise DiscoveryFailed("The address must not contain a user name or password.")
    try:
        parts.port  # noqa: B018  (raises on a port out of range)
    except ValueError:
        raise DiscoveryFailed("The address has an invalid port.") from None
    return text


def _loggable(url: str) -> str:
    try:
        return loggable_url(url)
    except ValueError:  # a feed link with a port out of range
        return "(invalid URL)"


async def _parses(fetcher: HttpFetcher, url: str, kind: str, reasons: list[str]) -> bool:
    result = await fetcher.get(url)
    if result.outcome is not FetchOutcome.OK or result.body is None:
        reasons.append(f"{_loggable(url)}: {result.error or 'no answer'}")
        return False
    try:
        parse_source(kind, result.body)
    except SourceFormatError:
        reasons.append(f"{_loggable(url)}: not {kind}")
        return False
    return True


def _is_feed(body: bytes) -> bool:
    head = body.lstrip()[:500].lower()
    if not (head.startswith(b"<?xml") or head.startswith(b"<rss") or head.startswith(b"<feed")):
        return False
    try:
        parse_source(SourceKind.FEED, body)
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
