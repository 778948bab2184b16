"""/report: "is it just me?" — count the problem, and say what everyone else sees."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import datetime, timedelta

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
from bot.services.deps import AppDeps
from bot.store import crowd_store
from bot.store.report_ledger import ReportLedger
from bot.store.user_hash import load_or_create_salt, user_hash
from cogs.common import resolve_service

WINDOW = timedelta(minutes=30)
PROBLEMS = ("errors", "slow", "login", "connect", "output", "other")
MAX_PER_USER_PER_HOUR = 20
MAX_PER_COMMUNITY_PER_HOUR = 500


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
    ledger = _ledger(ctx.deps)
    who = user_hash(actor.platform, actor.user_id, salt=await _salt(ctx.deps, ctx.now))
    # On SQLite one report at a time talks to the database: its writers would otherwise wait in
    # SQLite's busy handler, which sleeps up to 100 ms between tries. PostgreSQL needs no queue.
    gate: AbstractAsyncContextManager[object] = (
        ledger.sqlite_writes if ledger.is_sqlite(ctx.deps.sessions) else nullcontext()
    )
    async with gate, ctx.deps.sessions() as session:
        await ledger.ready(session, ctx.now)
        hour_ago = ctx.now - timedelta(hours=1)
        if ledger.sent_by_user(who, hour_ago) >= MAX_PER_USER_PER_HOUR:
            raise UserFacingError("Thanks, you have reported a lot in the last hour: we have it.")
        if ledger.sent_by_community(f"{actor.platform}:{community}", hour_ago) >= (
            MAX_PER_COMMUNITY_PER_HOUR
        ):
            raise UserFacingError(
                "This community sent many reports this hour; we have the picture. Thanks!"
            )
        usual = await ctx.deps.usual_levels.per_hour(session, target.id, ctx.now)
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
            known_repeat=ledger.spread(target.id, who, ctx.now).caller_included,
        )
        await session.commit()
    saved = outcome.report
    ledger.record(saved)
    if saved.counted:
        ctx.deps.reports.counted(target.id)
    spread = ledger.spread(target.id, who, ctx.now)
    # The ledger may lag another process by up to a minute; the caller always counts as one.
    reporters = spread.reporters + (0 if spread.caller_included else 1)
    others = reporters - 1
    plural = "s" if others != 1 else ""
    crowd = (
        f"You and {others} other{plural} reported problems with {target.name} in the last 30 min"
        if others > 0
        else f"You are the first to report problems with {target.name} in the last 30 min"
    )
    if usual is not None and reporters >= 3:
        ratio = reporters / max(usual * (WINDOW / timedelta(hours=1)), 0.5)
        crowd += f" ({ratio:.0f}× the usual)" if ratio >= 2 else " (about as usual)"
    official = ServiceState(outcome.service_state or ServiceState.UNKNOWN)
    lines = [f"{crowd}.", f"Official status: {official.label.lower()}."]
    if not saved.counted:
        lines.append(
            "You had already reported it in the last 30 min, so this one was not counted again."
        )
    return Reply(
        title="Thanks, report received" if saved.counted else "Already counted",
        body=rich("\n".join(lines)),
        tone=Tone.INFO,
        ephemeral=True,
    )


def _ledger(deps: AppDeps) -> ReportLedger:
    """The process's report ledger, made on first use. It asks for the service ids each time it
    primes, because custom services join the catalog while the bot runs."""
    if deps.reports.ledger is None:
        deps.reports.ledger = ReportLedger(
            service_ids=lambda: [s.id for s in deps.catalog],
            window=WINDOW,
        )
    return deps.reports.ledger


async def _salt(deps: AppDeps, now: datetime) -> bytes:
    # The salt never changes once created: read it once per process, not once per report. Its
    # own short transaction: creating it takes SQLite's write lock, which must not be held while
    # the report waits for its turn to write.
    state = deps.reports
    if state.salt is None:
        async with _ledger(deps).salt_lock:  # one creator; the others wait and read it
            if state.salt is None:
                async with deps.sessions() as session:
                    created = await load_or_create_salt(session=session, now=now)
                    await session.commit()
                state.salt = created  # only once stored
    return state.salt
