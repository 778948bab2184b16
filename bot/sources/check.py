"""``outagebot check``: read one status source from a URL or a file, once."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bot import __version__
from bot.core.status import Snapshot, SourceKind
from bot.core.timeutil import format_timestamp
from bot.settings import Settings
from bot.sources.errors import SourceFormatError
from bot.sources.fetch import FetchOutcome, HttpFetcher, new_http_session
from bot.sources.parsers import detect_kind, parse_source


class CheckFailed(Exception):
    """The source could not be read; the message is one line for the operator."""


async def read_source(
    source: str,
    *,
    settings: Settings,
    max_file_bytes: int,
    kind: str | None = None,
    options: Mapping[str, object] | None = None,
) -> Snapshot:
    """Fetch or open ``source`` and parse it as ``kind`` (detected from the body when None)."""
    if source.startswith(("http://", "https://")):
        body = await _fetch(source, settings)
    else:
        body = _read_file(Path(source), max_file_bytes)
    kind = kind or detect_kind(body)
    try:
        return parse_source(kind, body, options)
    except SourceFormatError as exc:
        raise CheckFailed(f"not {_KIND_NAMES[kind]}: {exc}") from None


_KIND_NAMES: dict[str, str] = {
    SourceKind.STATUSPAGE: "a Statuspage payload",
    SourceKind.FEED: "an RSS/Atom feed",
    SourceKind.GCLOUD: "a Google Cloud incidents list",
}


async def _fetch(url: str, settings: Settings) -> bytes:
    async with new_http_session(user_agent=f"outagebot/{__version__} check") as http:
        fetcher = HttpFetcher(
            http, timeout=settings.http_timeout_seconds, max_body_bytes=settings.http_max_body_bytes
        )
        result = await fetcher.get(url)
    if result.outcome is not FetchOutcome.OK or result.body is None:
        raise CheckFailed(f"could not read {url}: {result.error or 'no body'}")
    return result.body


def _read_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            body = handle.read(max_bytes + 1)
    except OSError as exc:
        raise CheckFailed(f"cannot open {path}: {exc.strerror or exc}") from None
    if len(body) > max_bytes:
        raise CheckFailed(f"{path} is larger than {max_bytes // 1_000_000} MB")
    return body


def render_summary(snapshot: Snapshot, *, origin: str) -> str:
    """A readable summary of what a source says."""
    lines = [
        f"{snapshot.page.name or origin} ({snapshot.kind})",
        f"indicator: {snapshot.indicator.value}"
        + (f" — {snapshot.description}" if snapshot.description else ""),
    ]
    troubled = [c for c in snapshot.components if c.status.value != "operational"]
    lines.append(f"components: {len(snapshot.components)} ({len(troubled)} not operational)")
    lines += [
        f"  - {c.name}{f' [{c.group}]' if c.group else ''}: {c.status.value}" for c in troubled
    ]
    open_incidents = snapshot.open_incidents
    lines.append(f"incidents: {len(snapshot.incidents)} ({len(open_incidents)} open)")
    for incident in open_incidents:
        lines.append(
            f"  - {incident.name} [{incident.impact}, {incident.status}]"
            f" since {format_timestamp(incident.started_at)}"
        )
        if incident.updates:
            latest = incident.updates[0]
            body = " ".join(latest.body.split())
            lines.append(f"    latest ({format_timestamp(latest.created_at)}): {body[:200]}")
    lines.append(f"maintenances: {len(snapshot.maintenances)}")
    return "\n".join(lines)
