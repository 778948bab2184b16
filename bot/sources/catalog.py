"""The service catalog: which services we track and where their status comes from.

The catalog is data (``catalog.toml`` beside this module, format in docs/catalog.md); this module
loads and validates it and resolves what users type ("claude", "gpt") to a service.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from bot.core.status import SourceKind
from bot.sources.probe import ProbeSpec

OFFICIAL_KINDS = frozenset({SourceKind.STATUSPAGE, SourceKind.FEED, SourceKind.GCLOUD})
SOURCE_KINDS = OFFICIAL_KINDS | {SourceKind.PROBE}
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the entry and the problem."""


@dataclass(frozen=True, slots=True)
class SourceDef:
    """Where one piece of status information for a service comes from."""

    kind: str
    url: str
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceDef:
    """A tracked service as the catalog describes it."""

    id: str
    name: str
    provider: str
    aliases: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    status_page: str | None = None
    components: tuple[str, ...] = ()
    upstreams: tuple[str, ...] = ()
    sla: str | None = None
    sources: tuple[SourceDef, ...] = ()

    @property
    def official_sources(self) -> tuple[SourceDef, ...]:
        """Sources published by the provider (not our own probes)."""
        return tuple(s for s in self.sources if s.kind in OFFICIAL_KINDS)


class Catalog:
    """A validated set of services with alias lookup; custom services join at run time."""

    def __init__(self, services: Sequence[ServiceDef]) -> None:
        self._services: dict[str, ServiceDef] = {}
        self._names: dict[str, str] = {}
        for service in services:
            self.add(service)

    def add(self, service: ServiceDef) -> None:
        """Add a service; CatalogError if its id, name or an alias is taken."""
        names = (service.id, *service.aliases, service.name.casefold())
        for name in names:
            owner = self._names.get(name)
            if owner is not None and owner != service.id:
                raise CatalogError(f"name {name!r} is used by both {owner!r} and {service.id!r}")
        if service.id in self._services:
            raise CatalogError(f"service id {service.id!r} is used twice")
        self._services[service.id] = service
        for name in names:
            self._names[name] = service.id

    def remove(self, service_id: str) -> ServiceDef | None:
        """Forget a service and its names."""
        service = self._services.pop(service_id, None)
        if service is not None:
            self._names = {n: sid for n, sid in self._names.items() if sid != service_id}
        return service

    def name_taken(self, name: str) -> bool:
        """Whether a name or id already means some service."""
        return name.strip().casefold() in self._names

    def __iter__(self) -> Iterator[ServiceDef]:
        return iter(self._services.values())

    def __len__(self) -> int:
        return len(self._services)

    def get(self, service_id: str) -> ServiceDef | None:
        """The service with exactly this id."""
        return self._services.get(service_id)

    def resolve(self, text: str) -> ServiceDef | None:
        """The service a user means by an id, alias or display name (case-insensitive)."""
        key = text.strip().casefold()
        service_id = self._names.get(key) or self._names.get(key.replace(" ", "-"))
        return self._services[service_id] if service_id else None

    def suggest(self, text: str, limit: int = 3) -> list[ServiceDef]:
        """Closest services to a misspelt name, best first."""
        key = text.strip().casefold()[:100]
        close = difflib.get_close_matches(key, list(self._names), n=limit * 3, cutoff=0.6)
        picked: list[ServiceDef] = []
        for name in close:
            service = self._services[self._names[name]]
            if service not in picked:
                picked.append(service)
        return picked[:limit]

    def source_urls(self) -> dict[str, SourceDef]:
        """Every distinct polled source, keyed by URL (services may share one page)."""
        urls: dict[str, SourceDef] = {}
        for service in self:
            for source in service.sources:
                urls.setdefault(source.url, source)
        return urls


def service_to_json(service: ServiceDef) -> dict[str, object]:
    """A service as ``outagebot services --json`` prints it."""
    return {
        "id": service.id,
        "name": service.name,
        "provider": service.provider,
        "aliases": list(service.aliases),
        "capabilities": list(service.capabilities),
        "status_page": service.status_page,
        "components": list(service.components),
        "sources": [{"kind": s.kind, "url": s.url, **dict(s.options)} for s in service.sources],
    }


def load_catalog(path: Path | None = None) -> Catalog:
    """Load the catalog from ``path``, or the built-in one."""
    if path is None:
        text = resources.files("bot.sources").joinpath("catalog.toml").read_text("utf-8")
        origin = "built-in catalog"
    else:
        text = path.read_text("utf-8")
        origin = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: not valid TOML: {exc}") from exc
    return parse_catalog(data, origin=origin)


def parse_catalog(data: Mapping[str, Any], *, origin: str = "catalog") -> Catalog:
    """Validate a decoded catalog document."""
    entries = data.get("service")
    if not isinstance(entries, list) or not entries:
        raise CatalogError(f"{origin}: no [[service]] entries")
    return Catalog([_parse_service(entry, origin) for entry in entries])


def _parse_service(entry: Any, origin: str) -> ServiceDef:
    if not isinstance(entry, dict):
        raise CatalogError(f"{origin}: a [[service]] entry is not a table")
    service_id = entry.get("id")
    if not isinstance(service_id, str) or not _ID_RE.match(service_id):
        raise CatalogError(f"{origin}: service id {service_id!r} must be lowercase kebab-case")
    where = f"{origin}: service {service_id!r}"
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise CatalogError(f"{where}: needs a name")
    sources = []
    for raw in entry.get("source", []):
        if not isinstance(raw, dict):
            raise CatalogError(f"{where}: a source is not a table")
        kind, url = raw.get("kind"), raw.get("url")
        if kind not in SOURCE_KINDS:
            raise CatalogError(
                f"{where}: source kind {kind!r} is not one of {sorted(SOURCE_KINDS)}"
            )
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CatalogError(f"{where}: source url {url!r} must be http(s)")
        options = {k: v for k, v in raw.items() if k not in {"kind", "url"}}
        sources.append(SourceDef(kind=kind, url=url, options=options))
    if not sources:
        raise CatalogError(f"{where}: needs at least one [[service.source]]")
    if sum(1 for s in sources if s.kind == SourceKind.STATUSPAGE) > 1:
        # Two pages' incidents would be announced twice under different ids.
        raise CatalogError(f"{where}: at most one statuspage source per service")
    for source in sources:
        problem = _source_problem(source)
        if problem:
            raise CatalogError(f"{where}: {source.kind} source {source.url}: {problem}")
    return ServiceDef(
        id=service_id,
        name=name.strip(),
        provider=str(entry.get("provider", name)).strip(),
        aliases=_strings(entry, "aliases", where, lower=True),
        capabilities=_strings(entry, "capabilities", where, lower=True),
        status_page=_optional_str(entry, "status_page", where),
        components=_strings(entry, "components", where),
        upstreams=_strings(entry, "upstreams", where, lower=True),
        sla=_optional_str(entry, "sla", where),
        sources=tuple(sources),
    )


def _source_problem(source: SourceDef) -> str | None:
    """Why a source's options are unusable, checked once at load instead of at every poll."""
    options = source.options
    if source.kind == SourceKind.PROBE:
        try:
            ProbeSpec.from_options(source.url, options)
        except ValueError as exc:
            return str(exc)
        return None
    allowed = {
        SourceKind.FEED: {"match"},
        SourceKind.GCLOUD: {"product"},
        SourceKind.STATUSPAGE: set(),
    }[SourceKind(source.kind)]
    unknown = sorted(set(options) - allowed)
    if unknown:
        return f"unknown option(s) {', '.join(unknown)}"
    for key in allowed & set(options):
        if not isinstance(options[key], str) or not options[key].strip():
            return f"{key} must be a non-empty string"
    return None


def _strings(
    entry: Mapping[str, Any], key: str, where: str, *, lower: bool = False
) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CatalogError(f"{where}: {key} must be a list of strings")
    return tuple(v.strip().casefold() if lower else v.strip() for v in value)


def _optional_str(entry: Mapping[str, Any], key: str, where: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise CatalogError(f"{where}: {key} must be a string")
    return value
