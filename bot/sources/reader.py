"""Read one official source: conditional fetch, parse, and (Statuspage) its extra endpoints."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from bot.core.status import Snapshot, SourceKind
from bot.sources.errors import SourceFormatError
from bot.sources.fetch import FetchOutcome, HttpFetcher
from bot.sources.parsers import parse_source
from bot.sources.statuspage_merge import merge_parts, part_urls

log = logging.getLogger(__name__)

_NO_PART: tuple[None, None, None] = (None, None, None)

ACCEPT: Mapping[str, str] = {
    SourceKind.STATUSPAGE: "application/json",
    SourceKind.GCLOUD: "application/json",
    SourceKind.FEED: "application/atom+xml, application/rss+xml, application/xml;q=0.9, */*;q=0.5",
}


@dataclass(slots=True)  # not frozen: one per read, and frozen's __init__ costs 3x as much
class ReadResult:
    """What one read found. ``unchanged``: the snapshot is the one returned last time. Read,
    never changed."""

    snapshot: Snapshot | None
    unchanged: bool
    error: str | None
    etag: str | None
    last_modified: str | None


class SourceReader:
    """Fetches and parses sources; keeps the last parse per URL so a 304 costs no parsing."""

    def __init__(self, fetcher: HttpFetcher) -> None:
        self._fetcher = fetcher
        self._last: dict[str, Snapshot] = {}
        self._validators: dict[str, tuple[str | None, str | None]] = {}
        self._parts: dict[str, tuple[str | None, str | None, Snapshot]] = {}
        self._unsupported: set[str] = set()
        # Per Statuspage page whose extra endpoints were read: the merge of the page's parses
        # as they stand (redone whenever one changes). A 304 everywhere merges nothing.
        self._merged: dict[str, Snapshot] = {}

    def footprint(self) -> dict[str, int]:
        """Entries held per cache, for checking that they stay bounded by the sources."""
        return {
            "parsed": len(self._last),
            "validators": len(self._validators),
            "parts": len(self._parts),
            "unsupported_parts": len(self._unsupported),
            "merged": len(self._merged),
        }

    def forget(self, url: str) -> None:
        """Drop everything kept for a source that is no longer polled."""
        self._last.pop(url, None)
        self._validators.pop(url, None)
        self._merged.pop(url, None)
        for part in part_urls(url):
            self._parts.pop(part, None)
            self._unsupported.discard(part)

    async def read(self, *, kind: str, url: str, options: Mapping[str, object]) -> ReadResult:
        """Read a source once; never raises except on cancellation."""
        cached = self._last.get(url)
        etag, last_modified = self._validators.get(url, (None, None))
        # After a restart nothing is cached, so the first read is a whole one.
        result = await self._fetcher.get(
            url,
            etag=etag if cached else None,
            last_modified=last_modified if cached else None,
            accept=ACCEPT.get(kind, "*/*"),
        )
        parts = part_urls(url) if kind == SourceKind.STATUSPAGE else ()
        if result.outcome is FetchOutcome.NOT_MODIFIED and cached is not None:
            self._validators[url] = (result.etag, result.last_modified)
            if parts_changed := await self._refresh_parts(url, parts):
                snapshot = self._complete(url, cached, parts)
            else:  # nothing changed anywhere: what the last read returned, the very object
                snapshot = self._merged.get(url, cached)
            return ReadResult(snapshot, not parts_changed, None, result.etag, result.last_modified)
        if result.outcome is not FetchOutcome.OK or result.body is None:
            error = result.error or f"unexpected answer ({result.outcome.value})"
            return ReadResult(None, False, error, etag, last_modified)
        try:
            parsed = self._shared(url, parse_source(kind, result.body, options))
        except SourceFormatError as exc:
            return ReadResult(None, False, f"unreadable payload: {exc}", etag, last_modified)
        self._last[url] = parsed
        self._validators[url] = (result.etag, result.last_modified)
        await self._refresh_parts(url, parts)
        snapshot = self._complete(url, parsed, parts)
        return ReadResult(snapshot, False, None, result.etag, result.last_modified)

    def _complete(self, url: str, snapshot: Snapshot, parts: Sequence[str]) -> Snapshot:
        """The page's parse completed by its extra endpoints' (kept as the page's merge)."""
        held = [self._parts[p][2] for p in parts if p in self._parts]
        if not held:
            self._merged.pop(url, None)
            return snapshot
        merged = self._merged[url] = merge_parts(snapshot, held)
        return merged

    def _shared(self, url: str, parsed: Snapshot) -> Snapshot:
        """`parsed`, holding the very components and incidents the page's other parses hold
        where they are equal: summary.json repeats what components.json and incidents.json
        list, and thousands of pages are kept in memory, so one copy of each is enough."""
        known = [self._last.get(url), *(self._parts.get(p, _NO_PART)[2] for p in part_urls(url))]
        components = {c: c for snapshot in known if snapshot for c in snapshot.components}
        incidents = {i: i for snapshot in known if snapshot for i in snapshot.incidents}
        if not components and not incidents:
            return parsed
        return replace(
            parsed,
            components=tuple(components.get(c, c) for c in parsed.components),
            incidents=tuple(incidents.get(i, i) for i in parsed.incidents),
        )

    async def _refresh_parts(self, url: str, parts: Sequence[str]) -> bool:
        """Fetch the extra endpoints; True when one changed. Failures keep the previous copy."""
        changed = False
        for part in parts:
            if part in self._unsupported:
                continue
            previous = self._parts.get(part)
            result = await self._fetcher.get(
                part,
                etag=previous[0] if previous else None,
                last_modified=previous[1] if previous else None,
            )
            if result.http_status == 404:
                self._unsupported.add(part)  # this page has no such endpoint: stop asking
                continue
            if result.outcome is not FetchOutcome.OK or result.body is None:
                continue  # unchanged, or failing for now: the previous copy stands
            try:
                parsed = self._shared(url, parse_source(SourceKind.STATUSPAGE, result.body))
            except SourceFormatError as exc:
                log.debug("ignoring %s: %s", part, exc)
                continue
            self._parts[part] = (result.etag, result.last_modified, parsed)
            changed = True
        return changed
