"""The public JSON API, version 1 (described by ``openapi.json`` next to this module)."""

from __future__ import annotations

from datetime import datetime, timedelta
from importlib import resources

from aiohttp import web

from bot.core.timeutil import format_timestamp, parse_timestamp
from bot.services import facts
from bot.sources.catalog import ServiceDef
from bot.web.endpoint import (
    WEB,
    ApiError,
    Handler,
    conditional,
    endpoint,
    error_response,
    json_bytes,
)

PREFIX = "/api/v1"
CACHE = "public, max-age=15"
CORS = {"Access-Control-Allow-Origin": "*"}
DEFAULT_INCIDENT_DAYS = 7
MAX_INCIDENT_DAYS = 365
MAX_INCIDENTS = 500
DEFAULT_INCIDENTS = 100
MAX_REPORT_HOURS = 168
KNOWN_PARAMS = {
    "incidents": {"service", "since", "limit"},
    "reports": {"hours"},
}


def install(app: web.Application) -> None:
    """Add the API routes to ``app``."""
    app.router.add_get(f"{PREFIX}/openapi.json", openapi)
    app.router.add_get(f"{PREFIX}/services", list_services)
    app.router.add_get(f"{PREFIX}/services/{{service_id}}", get_service)
    app.router.add_get(f"{PREFIX}/services/{{service_id}}/reports", get_reports)
    app.router.add_get(f"{PREFIX}/incidents", list_incidents)
    app.middlewares.append(json_not_found)


def openapi_document() -> bytes:
    """The OpenAPI 3.1 description shipped with the package."""
    return resources.files("bot.web").joinpath("openapi.json").read_bytes()


@endpoint("json")
async def openapi(request: web.Request) -> web.StreamResponse:
    """The OpenAPI document of this API."""
    return _json(request, openapi_document(), cache="public, max-age=3600")


@endpoint("json")
async def list_services(request: web.Request) -> web.StreamResponse:
    """Every tracked service at a glance."""
    context = request.app[WEB]
    found = await facts.summaries(context.deps, context.clock())
    return _reply(request, {"services": [summary_json(s) for s in found]})


@endpoint("json")
async def get_service(request: web.Request) -> web.StreamResponse:
    """One service in detail."""
    context = request.app[WEB]
    service = _service(request, request.match_info["service_id"])
    detail = await facts.detail(context.deps, service, context.clock())
    history = detail.history
    mttr = history.mean_time_to_recovery
    payload = {
        **summary_json(detail.summary),
        "components": [
            {"name": c.name, "group": c.group, "state": c.state.value} for c in detail.components
        ],
        "incidents": [incident_json(service, i) for i in detail.incidents],
        "history": {
            "days": history.days,
            "incidents": len(history.incidents),
            "uptime_percent": round(history.uptime, 3),
            "mean_time_to_recovery_seconds": int(mttr.total_seconds()) if mttr else None,
        },
        "workarounds": [
            {
                "id": w.id,
                "title": w.title,
                "steps": w.steps,
                "link": w.link,
                "created_at": format_timestamp(w.created_at),
                "worked": w.worked,
                "failed": w.failed,
            }
            for w in detail.workarounds
        ],
        "alternatives": [
            {
                "id": a.service.id,
                "name": a.service.name,
                "shared_capabilities": list(a.shared),
                "uptime_percent_30d": round(a.uptime, 3),
            }
            for a in detail.alternatives
        ],
    }
    return _reply(request, payload)


@endpoint("json")
async def get_reports(request: web.Request) -> web.StreamResponse:
    """Counted user reports per hour."""
    context = request.app[WEB]
    _reject_unknown(request, "reports")
    service = _service(request, request.match_info["service_id"])
    hours = _integer(request, "hours", default=24, low=1, high=MAX_REPORT_HOURS)
    now = context.clock()
    async with context.deps.sessions() as session:
        counts = await facts.report_counts(session, service.id, now, hours=hours)
    head = await facts.summary(context.deps, service, now)
    return _reply(
        request,
        {
            "service": service.id,
            "hours": hours,
            "total": sum(count for _, count in counts),
            "usual_per_hour": _rounded(head.usual_per_hour),
            "buckets": [{"hour": format_timestamp(at), "count": count} for at, count in counts],
        },
    )


@endpoint("json")
async def list_incidents(request: web.Request) -> web.StreamResponse:
    """Official incidents started or still open since a moment, newest first."""
    context = request.app[WEB]
    _reject_unknown(request, "incidents")
    now = context.clock()
    service_text = request.query.get("service")
    services = list(context.deps.catalog)
    if service_text is not None:
        services = [_service(request, service_text, status=400)]
    since = _since(request, now)
    limit = _integer(request, "limit", default=DEFAULT_INCIDENTS, low=1, high=MAX_INCIDENTS)
    found = await facts.incidents(context.deps, services, since, limit=limit)
    return _reply(
        request,
        {
            "since": format_timestamp(since),
            "incidents": [incident_json(service, incident) for service, incident in found],
        },
    )


@web.middleware
async def json_not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
    """JSON, not HTML, when no API route matches: API clients read JSON.

    Only unmatched paths are touched; routes other modules add under the API answer as they do.
    """
    unmatched = request.match_info.http_exception
    if unmatched is None or not request.path.startswith(PREFIX + "/"):
        return await handler(request)
    if isinstance(unmatched, web.HTTPMethodNotAllowed):
        response = error_response(405, "method_not_allowed", "This path only answers GET.")
        response.headers["Allow"] = ", ".join(sorted(unmatched.allowed_methods))
        return response
    return error_response(404, "not_found", f"No such API path. See {PREFIX}/openapi.json.")


def summary_json(summary: facts.ServiceSummary) -> dict[str, object]:
    """A service at a glance, as the API shows it."""
    service = summary.service
    incident = summary.incident
    warning = summary.early_warning
    return {
        "id": service.id,
        "name": service.name,
        "provider": service.provider,
        "status_page": service.status_page,
        "state": summary.state.value,
        "state_label": summary.state.label,
        "since": format_timestamp(summary.since),
        "checked_at": format_timestamp(summary.checked_at),
        "open_incidents": summary.open_incidents,
        "incident": None if incident is None else incident_json(service, incident, updates=False),
        "reports": {
            "last_hour": summary.reports_last_hour,
            "usual_per_hour": _rounded(summary.usual_per_hour),
        },
        "early_warning": None
        if warning is None
        else {
            "level": warning.level,
            "first_report_at": format_timestamp(warning.first_report_at),
            "opened_at": format_timestamp(warning.opened_at),
        },
        "probe_failing": summary.probe_failing,
        "links": {
            "self": f"{PREFIX}/services/{service.id}",
            "html": f"/service/{service.id}",
            "badge": f"/badge/{service.id}.svg",
        },
    }


def incident_json(
    service: ServiceDef, incident: facts.IncidentFact, *, updates: bool = True
) -> dict[str, object]:
    """An official incident, with its updates newest first unless ``updates`` is False."""
    payload: dict[str, object] = {
        "id": incident.id,
        "service": service.id,
        "title": incident.title,
        "impact": incident.impact,
        "status": incident.status,
        "url": incident.url,
        "started_at": format_timestamp(incident.started_at),
        "resolved_at": format_timestamp(incident.resolved_at),
    }
    if updates:
        payload["updates"] = [
            {"status": u.status, "body": u.body, "created_at": format_timestamp(u.created_at)}
            for u in incident.updates
        ]
    return payload


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _reply(request: web.Request, payload: object) -> web.Response:
    return _json(request, json_bytes(payload), cache=CACHE)


def _json(request: web.Request, body: bytes, *, cache: str) -> web.Response:
    return conditional(
        request,
        body,
        content_type="application/json",
        cache_control=cache,
        extra_headers=CORS,
    )


def _service(request: web.Request, text: str, *, status: int = 404) -> ServiceDef:
    service = request.app[WEB].deps.catalog.get(text.strip().lower())
    if service is None:
        shown = text if len(text) <= 64 else text[:63] + "…"
        raise ApiError(
            status,
            "unknown_service",
            f"No tracked service has the id {shown!r}. {PREFIX}/services lists them.",
        )
    return service


def _reject_unknown(request: web.Request, route: str) -> None:
    # A typo such as ?hour=48 would otherwise silently give the default.
    unknown = sorted(set(request.query) - KNOWN_PARAMS[route])
    if unknown:
        allowed = ", ".join(sorted(KNOWN_PARAMS[route]))
        raise ApiError(
            400, "bad_parameter", f"Unknown parameter {unknown[0][:40]!r}; allowed: {allowed}."
        )


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise ApiError(400, "bad_parameter", f"Give {name} at most once.")
    return values[0] if values else None


def _integer(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    text = _one(request, name)
    if text is None:
        return default
    stripped = text.strip()
    if not stripped.isascii() or not stripped.isdigit() or len(stripped) > 6:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}.")
    value = int(stripped)
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be a whole number from {low} to {high}.")
    return value


def _since(request: web.Request, now: datetime) -> datetime:
    text = _one(request, "since")
    if text is None:
        return now - timedelta(days=DEFAULT_INCIDENT_DAYS)
    since = parse_timestamp(text)
    if since is None:
        raise ApiError(
            400,
            "bad_parameter",
            "since must be an ISO 8601 date-time, e.g. 2026-11-20T00:00:00Z.",
        )
    if since > now:
        raise ApiError(400, "bad_parameter", "since must not be in the future.")
    return max(since, now - timedelta(days=MAX_INCIDENT_DAYS))
