"""/service add|remove: admins follow a status page the catalog does not have."""

from __future__ import annotations

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
from bot.core.rich import Quoted, rich
from bot.core.status import SourceKind
from bot.services.custom_services import Requester
from bot.services.deps import AppDeps
from cogs.common import resolve_service


def setup(registry: CommandRegistry) -> None:
    """Register /service."""
    registry.add(
        CommandSpec(
            name="service",
            description="Follow a status page that is not in the catalog (admins)",
            handler=service_command,
            admin_only=True,
            options=(
                OptionSpec("action", "add or remove", required=True, choices=("add", "remove")),
                OptionSpec("name", "the service's name, e.g. Acme API", kind=OptionKind.SERVICE),
                OptionSpec("url", "its status page, e.g. https://status.acme.com", max_length=300),
            ),
        )
    )


async def service_command(
    ctx: Context[AppDeps], action: str, name: str | None, url: str | None
) -> Reply:
    """Add or remove a custom service."""
    custom = ctx.deps.custom_services
    if custom is None:
        raise UserFacingError("Custom services are not available in this setup.")
    invocation = ctx.invocation
    requester = Requester(platform=invocation.actor.platform, community_id=invocation.community_id)
    if not name:
        raise UserFacingError(f"/service {action} needs the service's name.")
    if action == "add":
        if not url:
            raise UserFacingError(
                "/service add needs the status page's address, e.g. https://status.acme.com."
            )
        service = await custom.add(name=name, url=url, requester=requester)
        source = service.sources[0]
        kind = "its Statuspage API" if source.kind == SourceKind.STATUSPAGE else "its RSS/Atom feed"
        return Reply(
            title=f"Now following {service.name}",
            body=rich(
                f"I read {kind} every poll. Try /status {service.id}.\n",
                "Source: ",
                Quoted(source.url),
            ),
            tone=Tone.OK,
        )
    service = resolve_service(ctx, name)
    removed = await custom.remove(service_id=service.id, requester=requester)
    return Reply(body=rich(f"I no longer follow {removed.name}."), tone=Tone.OK)
