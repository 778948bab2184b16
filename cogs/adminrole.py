"""/adminrole: name a role whose members may use admin commands here (platform admins only)."""

from __future__ import annotations

import re
from typing import Any

from bot.core.commands import (
    CommandRegistry,
    CommandSpec,
    Context,
    Invocation,
    OptionSpec,
    Reply,
    Tone,
    UserFacingError,
)
from bot.core.rich import rich
from bot.services.deps import AppDeps
from bot.store import crowd_store

_ROLE = re.compile(r"^(?:<@&(\d{5,25})>|(\d{5,25}))$")


def setup(registry: CommandRegistry) -> None:
    """Register /adminrole and let its roles pass admin checks."""
    registry.add(
        CommandSpec(
            name="adminrole",
            description="Let a role use the admin commands here (server admins only)",
            handler=adminrole,
            admin_only=True,
            options=(
                OptionSpec(
                    "action",
                    "add, remove or list",
                    required=True,
                    choices=("add", "remove", "list"),
                ),
                OptionSpec("role", "the role, picked from the list", max_length=40),
            ),
        )
    )
    registry.role_admin_check = role_is_admin


async def role_is_admin(invocation: Invocation, deps: Any) -> bool:
    """Whether one of the actor's roles is an admin role of this community."""
    if not isinstance(deps, AppDeps):
        return False
    async with deps.sessions() as session:
        allowed = await crowd_store.admin_roles(
            session=session,
            platform=invocation.actor.platform,
            community_id=invocation.community_id,
        )
    return crowd_store.any_role(invocation.actor.roles, allowed)


async def adminrole(ctx: Context[AppDeps], action: str, role: str | None) -> Reply:
    """Add, remove or list the community's admin roles."""
    actor, community = ctx.invocation.actor, ctx.invocation.community_id
    if not actor.is_admin:
        # A role admin must not be able to hand out admin rights: only platform admins can.
        raise UserFacingError("Only server admins (Manage Server) can change admin roles.")
    async with ctx.deps.sessions() as session:
        if action == "list":
            roles = await crowd_store.admin_roles(
                session=session, platform=actor.platform, community_id=community
            )
            if not roles:
                return Reply(
                    body=rich("Only server admins can use admin commands here."), ephemeral=True
                )
            names = (
                ", ".join(f"<@&{r}>" for r in roles)
                if actor.platform == "discord"
                else ", ".join(roles)
            )
            return Reply(body=rich(f"Admin roles here: {names}."), ephemeral=True)
        match = _ROLE.match((role or "").strip())
        if match is None:
            raise UserFacingError("Pick the role from the list (a role, not a user).")
        role_id = match.group(1) or match.group(2)
        changed = await crowd_store.set_admin_role(
            session=session,
            platform=actor.platform,
            community_id=community,
            role_id=role_id,
            present=action == "add",
        )
        await session.commit()
    verb = "can now use" if action == "add" else "can no longer use"
    note = "" if changed else " (no change)"
    return Reply(
        body=rich(f"Members of that role {verb} admin commands here{note}."),
        tone=Tone.OK,
        ephemeral=True,
    )
