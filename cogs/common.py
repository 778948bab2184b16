"""Small pieces several cogs share: resolving a service name, state badges."""

from __future__ import annotations

from bot.core.commands import Context, Tone, UserFacingError
from bot.core.rich import Quoted
from bot.core.service_state import ServiceState
from bot.core.text import clean_user_text
from bot.services.deps import AppDeps
from bot.sources.catalog import ServiceDef

STATE_BADGE = {
    ServiceState.OPERATIONAL: "🟢",
    ServiceState.MAINTENANCE: "🔧",
    ServiceState.DEGRADED: "🟡",
    ServiceState.PARTIAL_OUTAGE: "🟠",
    ServiceState.MAJOR_OUTAGE: "🔴",
    ServiceState.UNKNOWN: "⚪",
}

STATE_TONE = {
    ServiceState.OPERATIONAL: Tone.OK,
    ServiceState.MAINTENANCE: Tone.INFO,
    ServiceState.DEGRADED: Tone.WARNING,
    ServiceState.PARTIAL_OUTAGE: Tone.WARNING,
    ServiceState.MAJOR_OUTAGE: Tone.DANGER,
    ServiceState.UNKNOWN: Tone.NEUTRAL,
}


def resolve_service(ctx: Context[AppDeps], text: str) -> ServiceDef:
    """The service a user named, or a friendly error suggesting the closest names."""
    catalog = ctx.deps.catalog
    service = catalog.resolve(text)
    if service is not None:
        return service
    shown = clean_user_text(text, 40)
    suggestions = catalog.suggest(text)
    if suggestions:
        names = " or ".join(f"{s.name} ({s.id})" for s in suggestions)
        raise UserFacingError("I don't track “", Quoted(shown), f"”. Did you mean {names}?")
    raise UserFacingError(
        "I don't track “", Quoted(shown), "”. /status lists every service I follow."
    )
