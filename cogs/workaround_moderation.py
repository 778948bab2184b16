"""/workaround's moderation: remove, hide, report, origin — and who may do each, where.

Workarounds are shared by every community; what a community decides (hiding, credit) binds only
that community, and its admins are its platform admins plus members of its /adminrole roles.
"""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.core.commands import Context, Reply, Tone, UserFacingError
from bot.core.rich import Quoted, rich
from bot.core.text import clean_user_text
from bot.services.deps import AppDeps
from bot.store import community_store
from bot.store.community_models import WorkaroundRow
from bot.store.community_store import GLOBAL_HIDE_REPORTS, Community
from bot.store.user_hash import load_or_create_salt, user_hash

MAX_COMMUNITY_NAME = 60


def community_of(ctx: Context[AppDeps]) -> Community:
    """The caller's community: the scope of hides, reports and credit."""
    return Community(ctx.invocation.actor.platform, ctx.invocation.community_id)


async def caller_hash(session: AsyncSession, ctx: Context[AppDeps]) -> str:
    """The caller's salted user hash (authorship, votes, reports)."""
    salt = await load_or_create_salt(session=session, now=ctx.now)
    actor = ctx.invocation.actor
    return user_hash(actor.platform, actor.user_id, salt=salt)


async def visible_row(session: AsyncSession, ctx: Context[AppDeps], number: int) -> WorkaroundRow:
    """Workaround ``number`` if this community may see it; otherwise it does not exist here."""
    row = await community_store.get_workaround(session=session, workaround_id=number)
    if row is None or await community_store.is_hidden_for(
        session=session, workaround=row, community=community_of(ctx)
    ):
        raise UserFacingError(f"There is no workaround #{number} here.")
    return row


async def is_admin_here(ctx: Context[AppDeps]) -> bool:
    """Whether the caller may use admin actions in this community: platform rights, or a role
    named with /adminrole (as the dispatcher checks for admin-only commands)."""
    actor = ctx.invocation.actor
    if actor.is_admin:
        return True
    check = ctx.deps.registry.role_admin_check
    if check is None or not actor.roles:
        return False
    return await check(ctx.invocation, ctx.deps)


async def remove(ctx: Context[AppDeps], number: int) -> Reply:
    """Delete a workaround: its author, or an admin of the community it was posted in."""
    actor = ctx.invocation.actor
    admin_here = await is_admin_here(ctx)  # before our session: one connection at a time
    async with ctx.deps.sessions() as session:
        row = await community_store.get_workaround(session=session, workaround_id=number)
        if row is None:
            raise UserFacingError(f"There is no workaround #{number}.")
        is_author = row.author_hash == await caller_hash(session, ctx)
        origin_admin = (
            admin_here
            and row.origin_platform == actor.platform
            and row.origin_community_id == ctx.invocation.community_id
        )
        if not (is_author or origin_admin):
            raise UserFacingError(
                f"Only the person who shared #{number}, or an admin of the community it was "
                "shared in, can remove it. Admins here can /workaround hide it for this "
                "community; anyone can /workaround report it."
            )
        await community_store.remove_workaround(session=session, workaround=row)
        await session.commit()
    return Reply(
        body=rich(f"Workaround #{number} is removed for everyone."), tone=Tone.OK, ephemeral=True
    )


async def hide(ctx: Context[AppDeps], number: int, *, hidden: bool) -> Reply:
    """Hide (or show again) a workaround in this community only (admins)."""
    if not await is_admin_here(ctx):
        raise UserFacingError("Only admins can hide workarounds here. Anyone can report one.")
    community = community_of(ctx)
    async with ctx.deps.sessions() as session:
        row = await community_store.get_workaround(session=session, workaround_id=number)
        if row is None:
            raise UserFacingError(f"There is no workaround #{number}.")
        if hidden:
            changed = await community_store.hide_locally(
                session=session, workaround_id=number, community=community, now=ctx.now
            )
        else:
            changed = await community_store.unhide_locally(
                session=session, workaround_id=number, community=community
            )
        await session.commit()
    if hidden:
        text = (
            f"Workaround #{number} is hidden in this community. Other communities still see it."
            if changed
            else f"Workaround #{number} was already hidden here."
        )
    else:
        text = (
            f"Workaround #{number} is visible here again."
            if changed
            else f"Workaround #{number} was not hidden here."
        )
    return Reply(body=rich(text), tone=Tone.OK, ephemeral=True)


async def report(ctx: Context[AppDeps], number: int) -> Reply:
    """Report a workaround; reports from several communities hide it everywhere."""
    async with ctx.deps.sessions() as session:
        row = await visible_row(session, ctx, number)
        fresh, reports = await community_store.report(
            session=session,
            workaround=row,
            community=community_of(ctx),
            reporter_hash=await caller_hash(session, ctx),
            now=ctx.now,
        )
        hidden = row.hidden_globally
        await session.commit()
    if hidden:
        text = (
            f"Thanks. #{number} was reported by {reports} communities and is now hidden everywhere."
        )
    elif fresh:
        text = (
            f"Thanks, reported. #{number} is hidden everywhere once {GLOBAL_HIDE_REPORTS} "
            f"communities report it ({reports} so far). Admins can hide it here right away "
            f"with /workaround hide {number}."
        )
    else:
        text = f"This community has already reported #{number} ({reports} so far)."
    return Reply(body=rich(text), tone=Tone.OK, ephemeral=True)


async def origin(ctx: Context[AppDeps], target: str | None, text: str | None) -> Reply:
    """Whether workarounds shared from here show this community's platform and name (admins)."""
    if not await is_admin_here(ctx):
        raise UserFacingError("Only admins can change how this community is credited.")
    choice = (target or "").casefold()
    if choice not in {"on", "off"}:
        raise UserFacingError(
            "Use /workaround origin on <community name> to credit this community, "
            "or /workaround origin off."
        )
    name = clean_user_text(text, MAX_COMMUNITY_NAME + 1) if text else None
    if name is not None and len(name) > MAX_COMMUNITY_NAME:
        raise UserFacingError(
            f"The community name is too long (at most {MAX_COMMUNITY_NAME} characters)."
        )
    async with ctx.deps.sessions() as session:
        await community_store.set_origin(
            session=session,
            community=community_of(ctx),
            show=choice == "on",
            name=name,
            now=ctx.now,
        )
        await session.commit()
    if choice == "off":
        body = rich("Workarounds shared from here no longer say where they come from.")
    elif name:
        body = rich("Workarounds shared from here now show the platform and “", Quoted(name), "”.")
    else:
        body = rich("Workarounds shared from here now show the platform they come from.")
    return Reply(body=body, tone=Tone.OK, ephemeral=True)
