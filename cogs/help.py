"""/help: what the bot can do, or how to use one command."""

from __future__ import annotations

from bot.core.commands import CommandRegistry, CommandSpec, Context, OptionSpec, Reply, ReplyField
from bot.core.rich import Quoted, RichText, join_lines, rich
from bot.services.deps import AppDeps

_ABOUT = (
    "I watch the official status pages of the services this community depends on and answer "
    "“is it just me?” with facts."
)


def setup(registry: CommandRegistry) -> None:
    """Register /help."""
    registry.add(
        CommandSpec(
            name="help",
            description="What this bot can do",
            handler=help_command,
            options=(OptionSpec("command", "a command to explain, e.g. status"),),
        )
    )


async def help_command(ctx: Context[AppDeps], command: str | None) -> Reply:
    """List commands, or describe one."""
    registry = ctx.deps.registry
    if command is not None:
        spec = registry.get(command)
        if spec is None:
            return Reply(
                body=rich("There is no command “", Quoted(command[:40]), "”. /help lists them."),
                ephemeral=True,
            )
        usage = " ".join(
            [
                f"/{spec.name}",
                *(f"[{o.name}]" if not o.required else f"<{o.name}>" for o in spec.options),
            ]
        )
        fields = tuple(ReplyField(name=o.name, value=rich(o.description)) for o in spec.options)
        return Reply(title=usage, body=rich(spec.description), fields=fields, ephemeral=True)
    lines: list[RichText] = [rich(_ABOUT), ()]
    for spec in registry:
        if spec.admin_only and not ctx.invocation.actor.is_admin:
            continue
        lines.append(rich(f"/{spec.name} — {spec.description}"))
    return Reply(title="outagebot", body=join_lines(lines), ephemeral=True)
