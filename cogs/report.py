"""/report: "is it just me?" — count the problem, and say what everyone else sees."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    OptionKind,
    OptionSpec,
    Reply,
    Tone,
    UserFacingError,
)
from bot.core.rich import rich
from bot.core.service_state import ServiceState
from bot.core.text import clean_user_text
from bot.deps import AppDeps
from bot.store import crowd_store
from bot.store.models import ServiceRow
from bot.store.user_hash import load_or_create_salt, user_hash
from cogs.common import resolve_service

WINDOW = timedelta(minutes=30)
PROBLEMS = ("errors", "slow", "login", "connect", "output", "other")
MAX_PER_USER_PER_HOUR = 20
MAX_PER_COMMUNITY_PER_HOUR = 500
BASELINE_DAYS = 7


def setup(registry: CommandRegistry) -> None:
    """Register /report."""
    registry.add(
        CommandSpec(
            name="report",
            description="Report a problem with a service (is it just me?)",
            handler=report,
            options=(
                OptionSpec(
                    "service", "the service, e.g. openai", kind=OptionKind.SERVICE, required=True
                ),
                OptionSpec("what", "what goes wrong", choices=PROBLEMS),
                OptionSpec("component", "which part, e.g. API or login", max_length=60),
                OptionSpec("details", "a few words (optional)", max_length=200),
            ),
        )
    )


async def report(
    ctx: Context[AppDeps],
    service: str,
    what: str | None,
    component: str | None,
    details: str | None,
) -> Reply:
    """Count one report and answer with the crowd's view and the official one."""
    target = resolve_service(ctx, service)
    actor, community = ctx.invocation.actor, ctx.invocation.community_id
    async with ctx.deps.sessions() as session:
        salt = await _salt(ctx.deps, session, ctx.now)
        who = user_hash(actor.platform, actor.user_id, salt=salt)
        hour_ago = ctx.now - timedelta(hours=1)
        if (
            await crowd_store.reports_by(session=session, reporter_hash=who, since=hour_ago)
            >= MAX_PER_USER_PER_HOUR
        ):
            raise UserFacingError("Thanks, you have reported a lot in the last hour: we have it.")
        if (
            await crowd_store.reports_by(
                session=session, community=(actor.platform, community), since=hour_ago
            )
            >= MAX_PER_COMMUNITY_PER_HOUR
        ):
            raise UserFacingError(
                "This community sent many reports this hour; we have the picture. Thanks!"
            )
        outcome = await crowd_store.add_report(
            session=session,
            service_id=target.id,
            reporter_hash=who,
            platform=actor.platform,
            community_id=community,
            what=what or "other",
            component=clean_user_text(component, 60) if component else None,
            details=clean_user_text(details, 200) if details else None,
            now=ctx.now,
            window=WINDOW,
        )
        usual = await _usual(session, target.id, ctx.now)
        stored = await session.get(ServiceRow, target.id)
        await session.commit()
    others = outcome.reporters - 1
    plural = "s" if others != 1 else ""
    crowd = (
        f"You and {others} other{plural} reported problems with {target.name} in the last 30 min"
        if others > 0
        else f"You are the first to report problems with {target.name} in the last 30 min"
    )
    if usual is not None and outcome.reporters >= 3:
        ratio = outcome.reporters / max(usual, 0.5)
        crowd += f" ({ratio:.0f}× the usual)" if ratio >= 2 else " (about as usual)"
    official = ServiceState(stored.state) if stored else ServiceState.UNKNOWN
    lines = [f"{crowd}.", f"Official status: {official.label.lower()}."]
    if not outcome.counted:
        lines.append(
            "You had already reported it in the last 30 min, so this one was not counted again."
        )
    return Reply(
        title="Thanks, report received" if outcome.counted else "Already counted",
        body=rich("\n".join(lines)),
        tone=Tone.INFO,
        ephemeral=True,
    )


async def _usual(session: AsyncSession, service_id: str, now: datetime) -> float | None:
    """Average counted reports per 30 minutes over the last week (None with too little data)."""
    earlier = await crowd_store.counted_between(
        session=session,
        service_id=service_id,
        since=now - timedelta(days=BASELINE_DAYS),
        until=now - WINDOW,
    )
    if earlier < 10:
        return None
    return earlier / ((timedelta(days=BASELINE_DAYS) - WINDOW) / WINDOW)


async def _salt(deps: AppDeps, session: AsyncSession, now: datetime) -> bytes:
    # The salt never changes once created: read it once per process, not once per report.
    if deps.cache.get("user-hash-salt") is None:
        deps.cache["user-hash-salt"] = await load_or_create_salt(session=session, now=now)
    salt = deps.cache["user-hash-salt"]
    if not isinstance(salt, bytes):
        raise TypeError("cached salt is not bytes")
    return salt
