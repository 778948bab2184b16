"""One entry point for every pollable source kind: bytes in, Snapshot out."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.core.status import Snapshot, SourceKind
from bot.sources.errors import SourceFormatError
from bot.sources.feed import parse_feed_bytes
from bot.sources.gcloud import parse_gcloud_bytes
from bot.sources.statuspage import parse_statuspage_bytes

Parser = Callable[[bytes, Mapping[str, object]], Snapshot]

PARSERS: Mapping[str, Parser] = {
    SourceKind.STATUSPAGE: lambda body, _options: parse_statuspage_bytes(body),
    SourceKind.FEED: lambda body, options: parse_feed_bytes(body, options=options),
    SourceKind.GCLOUD: lambda body, options: parse_gcloud_bytes(body, options=options),
}


def parse_source(kind: str, body: bytes, options: Mapping[str, object] | None = None) -> Snapshot:
    """Parse a body of a source kind; SourceFormatError when it is not that kind's payload."""
    parser = PARSERS.get(kind)
    if parser is None:
        raise SourceFormatError(f"no parser for source kind {kind!r}")
    return parser(body, options or {})


def detect_kind(body: bytes) -> str:
    """Guess a payload's kind: a JSON list is gcloud, a JSON object statuspage, else a feed."""
    head = body.lstrip()[:1]
    if head == b"[":
        return SourceKind.GCLOUD
    if head == b"{":
        return SourceKind.STATUSPAGE
    return SourceKind.FEED
